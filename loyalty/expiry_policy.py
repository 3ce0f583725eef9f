"""Expiry policies: when the points of a credit stop being valid.

A policy is written `never`, `days:N`, `months:N` or `year_end:N`. Every
expiry falls on a local midnight of the merchant's time zone (TIME_ZONE), the
first instant after the last valid day.
"""

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

POLICY_BOUNDS = {"days": (1, 3650), "months": (1, 120), "year_end": (0, 10)}


@dataclass(frozen=True)
class ExpiryPolicy:
    unit: str  # "never" or a key of POLICY_BOUNDS
    count: int = 0

    @classmethod
    def parse(cls, text: str) -> "ExpiryPolicy":
        if text == "never":
            return cls("never")
        unit, sep, count = text.partition(":")
        # ASCII digits: isdigit() alone would take "٣" and "²" (which int() refuses).
        if not sep or unit not in POLICY_BOUNDS or not (count.isascii() and count.isdigit()):
            raise ValueError(text)
        low, high = POLICY_BOUNDS[unit]
        if not low <= int(count) <= high:
            raise ValueError(text)
        return cls(unit, int(count))

    def describe(self) -> str:
        """The policy as staff read it: "after 12 months, at the end of that month"."""
        values = {"count": self.count}
        if self.unit == "days":
            return ngettext("after %(count)d day", "after %(count)d days", self.count) % values
        if self.unit == "months":
            return (
                ngettext(
                    "after %(count)d month, at the end of that month",
                    "after %(count)d months, at the end of that month",
                    self.count,
                )
                % values
            )
        if self.unit == "year_end" and self.count:
            return (
                ngettext(
                    "at the end of the year, %(count)d year on",
                    "at the end of the year, %(count)d years on",
                    self.count,
                )
                % values
            )
        if self.unit == "year_end":
            return gettext("at the end of the year")
        return gettext("never expire")

    def expires_at(self, earned_at: datetime) -> datetime | None:
        """The instant the points earned at `earned_at` expire, or None for never."""
        if self.unit == "never":
            return None
        earned_on = earned_at.astimezone(_merchant_zone()).date()
        return _local_midnight(self._first_invalid_day(earned_on))

    def _first_invalid_day(self, earned_on: date) -> date:
        if self.unit == "days":
            return earned_on + timedelta(days=self.count + 1)
        if self.unit == "months":
            months = earned_on.year * 12 + earned_on.month - 1 + self.count + 1
            return date(months // 12, months % 12 + 1, 1)
        return date(earned_on.year + self.count + 1, 1, 1)


def new_points_expire_at(expiry_policy: str, credited_at: datetime) -> datetime | None:
    """When points credited at `credited_at` expire under the program's expiry policy:
    the one rule for every new lot, whether earned, adjusted or shown in a preview."""
    return ExpiryPolicy.parse(expiry_policy).expires_at(credited_at)


def validate_expiry_policy(text: str) -> None:
    try:
        ExpiryPolicy.parse(text)
    except ValueError:
        raise ValidationError(
            _(
                "Use never, days:N (1 to 3650), months:N (1 to 120) or year_end:N (0 to 10), "
                "for example months:12."
            ),
            code="invalid_expiry_policy",
        ) from None


def _merchant_zone() -> ZoneInfo:
    return ZoneInfo(settings.TIME_ZONE)


def _local_midnight(day: date) -> datetime:
    # Where DST skips midnight, fold=0 maps 00:00 to the first instant of that day;
    # the round trip through UTC turns that non-existent wall time into a real one.
    zone = _merchant_zone()
    return datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(UTC).astimezone(zone)
