"""The birthday job: each customer whose birthday is today, in the merchant's time
zone, gets the birthday bonus once that year.

It walks the customers born on the day in chunks of member ids (keyset pagination,
as the expiry job does), and records each one's event in a short transaction of its
own (`events.event_record`). The record is unique per member and year, so a second
run on the same day, or a run after a worker died mid-way, pays only whom the first
did not. A birthday on 29 February is kept on 28 February in the other years.
"""

import calendar
import time
from dataclasses import dataclass
from datetime import date, datetime

from django.conf import settings
from django.db import connection
from django.utils import timezone
from django.utils.translation import gettext as _

from loyalty.models import EventRule, MemberEvent

from .events import EventReport, event_record


@dataclass
class BirthdayRun:
    """What one run did."""

    day: date
    members: int = 0
    paid: int = 0
    points: int = 0
    seconds: float = 0.0

    def summary(self) -> str:
        return _(
            "birthdays of %(day)s: %(members)s customers, %(paid)s paid %(points)s points "
            "this run, in %(seconds)ss"
        ) % {
            "day": self.day.isoformat(),
            "members": f"{self.members:,}",
            "paid": f"{self.paid:,}",
            "points": f"{self.points:,}",
            "seconds": f"{self.seconds:.1f}",
        }


def birthday_bonuses_pay(
    *, at: datetime | None = None, chunk_size: int | None = None
) -> BirthdayRun:
    """Pay the birthday bonus of every customer born on the local day of `at` (now)."""
    at = at or timezone.now()
    started = time.monotonic()
    run = BirthdayRun(day=timezone.localdate(at))
    size = chunk_size or settings.BIRTHDAY_CHUNK_SIZE
    after = 0
    while chunk := birthdays_on(day=run.day, after=after, size=size):
        for member_id, unpaid_year in chunk:
            _birthday_pay(run, member_id=member_id, unpaid_year=unpaid_year, at=at)
        after = chunk[-1][0]
    run.seconds = time.monotonic() - started
    return run


def _birthday_pay(run: BirthdayRun, *, member_id: int, unpaid_year: int | None, at: datetime):
    late = unpaid_year == run.day.year
    report = EventReport(
        event_type=EventRule.BuiltIn.BIRTHDAY,
        external_id=str(run.day.year),
        occurred_at=at,
        forfeited=MemberEvent.Outcome.BIRTHDAY_SET_LATE if late else "",
    )
    event, new = event_record(member_id=member_id, report=report)
    run.members += 1
    if new and event.points:
        run.paid += 1
        run.points += event.points


BIRTHDAYS_ON = """
    SELECT member.id, account.birthday_unpaid_year
    FROM loyalty_member AS member
    JOIN accounts_user AS account ON account.id = member.user_id
    WHERE (account.birthday_month, account.birthday_day) IN (
        SELECT * FROM unnest(%(months)s::smallint[], %(days)s::smallint[])
    )
      AND member.erased_at IS NULL AND member.id > %(after)s
    ORDER BY member.id LIMIT %(size)s
"""


def birthdays_on(*, day: date, after: int, size: int) -> list[tuple[int, int | None]]:
    """(member id, the year whose bonus the customer forfeited) of the customers whose
    birthday is `day`, member ids above `after`, `size` at most, ascending."""
    born = [(day.month, day.day)]
    if (day.month, day.day) == (2, 28) and not calendar.isleap(day.year):
        born.append((2, 29))
    parameters = {
        "months": [month for month, _day in born],
        "days": [day_of_month for _month, day_of_month in born],
        "after": after,
        "size": size,
    }
    with connection.cursor() as cursor:
        cursor.execute(BIRTHDAYS_ON, parameters)
        return cursor.fetchall()
