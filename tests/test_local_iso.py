"""Bodies built without a serializer write times exactly as DRF's DateTimeField would."""

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone
from rest_framework.fields import DateTimeField

from core.api.fields import local_iso

TIMES = [
    datetime(2026, 11, 23, 10, 0, tzinfo=UTC),
    datetime(2026, 11, 23, 10, 0, 0, 120, tzinfo=UTC),
    datetime(2026, 3, 8, 7, 30, tzinfo=UTC),  # New York's clocks go forward that day
]


@pytest.mark.parametrize("zone", ["UTC", "Asia/Shanghai", "America/New_York"])
@pytest.mark.parametrize("value", TIMES)
def test_a_time_is_written_as_drf_writes_it_in_the_merchants_zone(zone, value):
    with timezone.override(ZoneInfo(zone)):
        expected = DateTimeField().to_representation(value)

        assert local_iso(value) == expected
        assert local_iso(value, timezone.get_current_timezone()) == expected


def test_a_naive_time_is_refused_rather_than_read_in_the_servers_zone():
    with pytest.raises(ValueError):
        local_iso(datetime(2026, 11, 23, 10, 0))
