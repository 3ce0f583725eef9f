from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import ValidationError

from loyalty.expiry import ExpiryPolicy, validate_expiry_policy

SHANGHAI = ZoneInfo("Asia/Shanghai")
NEW_YORK = ZoneInfo("America/New_York")


def expiry(policy, earned_at):
    return ExpiryPolicy.parse(policy).expires_at(earned_at)


@pytest.mark.parametrize(
    ("policy", "earned_at", "expected"),
    [
        (
            "months:12",
            datetime(2026, 7, 6, 10, 0, tzinfo=SHANGHAI),
            datetime(2027, 8, 1, tzinfo=SHANGHAI),
        ),
        (
            "months:1",
            datetime(2026, 12, 31, 23, 59, tzinfo=SHANGHAI),
            datetime(2027, 2, 1, tzinfo=SHANGHAI),
        ),
        (
            "days:1",
            datetime(2026, 2, 28, 12, 0, tzinfo=SHANGHAI),
            datetime(2026, 3, 2, tzinfo=SHANGHAI),
        ),
        (
            "year_end:0",
            datetime(2026, 7, 6, tzinfo=SHANGHAI),
            datetime(2027, 1, 1, tzinfo=SHANGHAI),
        ),
        (
            "year_end:1",
            datetime(2026, 12, 31, 23, 0, tzinfo=SHANGHAI),
            datetime(2028, 1, 1, tzinfo=SHANGHAI),
        ),
    ],
)
def test_points_expire_at_the_local_midnight_after_their_last_valid_day(
    settings, policy, earned_at, expected
):
    settings.TIME_ZONE = "Asia/Shanghai"
    assert expiry(policy, earned_at) == expected


def test_the_earning_day_is_the_merchants_local_day_not_utc(settings):
    settings.TIME_ZONE = "Asia/Shanghai"
    # 2026-07-31 20:00 UTC is already 1 August in Shanghai.
    earned_at = datetime(2026, 7, 31, 20, 0, tzinfo=ZoneInfo("UTC"))

    assert expiry("months:1", earned_at) == datetime(2026, 10, 1, tzinfo=SHANGHAI)


def test_a_zone_with_daylight_saving_expires_at_its_own_midnight(settings):
    settings.TIME_ZONE = "America/New_York"
    earned_at = datetime(2026, 3, 7, 12, 0, tzinfo=NEW_YORK)  # the day before DST starts

    expires = expiry("days:1", earned_at)

    assert expires == datetime(2026, 3, 9, tzinfo=NEW_YORK)
    assert expires.utcoffset().total_seconds() == -4 * 3600


def test_never_means_no_expiry():
    assert expiry("never", datetime(2026, 1, 1, tzinfo=SHANGHAI)) is None


@pytest.mark.parametrize(
    "text",
    [
        "",
        "sometimes",
        "days",
        "days:",
        "days:0",
        "months:-1",
        "months:x",
        "year_end:11",
        "days:1:2",
    ],
)
def test_a_malformed_policy_is_refused_with_an_explanation(text):
    with pytest.raises(ValidationError, match="months:12"):
        validate_expiry_policy(text)
