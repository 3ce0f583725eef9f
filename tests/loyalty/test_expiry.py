from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import ValidationError

from loyalty.expiry_policy import ExpiryPolicy, validate_expiry_policy

SHANGHAI = ZoneInfo("Asia/Shanghai")
NEW_YORK = ZoneInfo("America/New_York")
# Chile moves its clocks at midnight: 2026-09-06 starts at 01:00.
SANTIAGO = ZoneInfo("America/Santiago")


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


@pytest.mark.parametrize(
    ("policy", "earned_on", "first_invalid_day"),
    [
        # Months: to the end of the month, so a short or a leap February never shifts it.
        ("months:1", (2026, 1, 31), (2026, 3, 1)),
        ("months:1", (2026, 1, 1), (2026, 3, 1)),
        ("months:12", (2028, 2, 29), (2029, 3, 1)),
        ("months:11", (2026, 12, 5), (2027, 12, 1)),
        ("months:12", (2026, 12, 5), (2028, 1, 1)),
        ("months:120", (2026, 7, 6), (2036, 8, 1)),
        # Days: counted on the calendar, leap days included.
        ("days:1", (2028, 2, 28), (2028, 3, 1)),
        ("days:1", (2026, 12, 30), (2027, 1, 1)),
        ("days:366", (2027, 3, 1), (2028, 3, 2)),
        ("days:3650", (2026, 1, 1), (2035, 12, 31)),
        # Year end: the earning day's year counts, however early or late in it.
        ("year_end:0", (2026, 1, 1), (2027, 1, 1)),
        ("year_end:0", (2026, 12, 31), (2027, 1, 1)),
        ("year_end:10", (2026, 6, 1), (2037, 1, 1)),
    ],
)
@pytest.mark.parametrize("zone", ["Asia/Shanghai", "America/New_York"])
def test_month_day_and_year_edges_in_zones_with_and_without_daylight_saving(
    settings, zone, policy, earned_on, first_invalid_day
):
    settings.TIME_ZONE = zone
    local = ZoneInfo(zone)
    # Both ends of the earning day expire together.
    for time_of_day in ((0, 0), (23, 59)):
        earned_at = datetime(*earned_on, *time_of_day, tzinfo=local)

        assert expiry(policy, earned_at) == datetime(*first_invalid_day, tzinfo=local)


def test_the_earning_day_is_the_merchants_local_day_not_utc(settings):
    settings.TIME_ZONE = "Asia/Shanghai"
    # 2026-07-31 20:00 UTC is already 1 August in Shanghai.
    earned_at = datetime(2026, 7, 31, 20, 0, tzinfo=UTC)

    assert expiry("months:1", earned_at) == datetime(2026, 10, 1, tzinfo=SHANGHAI)


def test_a_zone_with_daylight_saving_expires_at_its_own_midnight(settings):
    settings.TIME_ZONE = "America/New_York"
    earned_at = datetime(2026, 3, 7, 12, 0, tzinfo=NEW_YORK)  # the day before DST starts

    expires = expiry("days:1", earned_at)

    assert expires == datetime(2026, 3, 9, tzinfo=NEW_YORK)
    assert expires.utcoffset().total_seconds() == -4 * 3600


@pytest.mark.parametrize(
    ("policy", "earned_at", "expected", "offset_hours"),
    [
        # The day clocks go back has 25 hours: expiry still falls on its midnight (EDT).
        ("days:1", datetime(2026, 10, 30, 12, 0), datetime(2026, 11, 1), -4),
        ("days:1", datetime(2026, 10, 31, 12, 0), datetime(2026, 11, 2), -5),
        # Earned in the repeated hour after clocks went back: still 1 November.
        ("days:1", datetime(2026, 11, 1, 1, 30, fold=1), datetime(2026, 11, 3), -5),
        # Earned in summer time, expiring in winter time, at the winter midnight.
        ("months:1", datetime(2026, 10, 15, 9, 0), datetime(2026, 12, 1), -5),
        ("year_end:0", datetime(2026, 7, 4, 9, 0), datetime(2027, 1, 1), -5),
        # Earned in winter time, expiring in summer time.
        ("months:3", datetime(2026, 12, 20, 9, 0), datetime(2027, 4, 1), -4),
    ],
)
def test_daylight_saving_changes_never_move_expiry_off_the_local_midnight(
    settings, policy, earned_at, expected, offset_hours
):
    settings.TIME_ZONE = "America/New_York"

    expires = expiry(policy, earned_at.replace(tzinfo=NEW_YORK))

    assert expires == expected.replace(tzinfo=NEW_YORK)
    assert expires.utcoffset().total_seconds() == offset_hours * 3600


def test_where_daylight_saving_skips_midnight_points_expire_at_the_days_first_instant(settings):
    settings.TIME_ZONE = "America/Santiago"
    earned_at = datetime(2026, 9, 4, 15, 0, tzinfo=SANTIAGO)

    expires = expiry("days:1", earned_at)

    # 2026-09-06 begins at 01:00 -03, which is 04:00 UTC; the 5th is valid to its end.
    # (Compared in UTC: a local time in the gap is never == a time of another zone.)
    assert expires.astimezone(UTC) == datetime(2026, 9, 6, 4, 0, tzinfo=UTC)
    assert datetime(2026, 9, 5, 23, 59, 59, tzinfo=SANTIAGO) < expires
    assert expires.astimezone(UTC).astimezone(SANTIAGO).hour == 1


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
        "days:٣",
        "days:５",
        "days:²",
    ],
)
def test_a_malformed_policy_is_refused_with_an_explanation(text):
    with pytest.raises(ValidationError, match="months:12"):
        validate_expiry_policy(text)
