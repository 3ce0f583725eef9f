"""The customer's profile: name, birthday and language, and the points it brings.

The birthday pays a bonus every year, so it is guarded against gaming
(docs/policies.md, "Events"): it can be changed at most once a year after it is
set, and one set less than 30 days before it pays nothing that year. The first
time the profile holds both a name and a birthday, the customer earns the
profile-completed bonus, once.
"""

import calendar
from dataclasses import dataclass
from datetime import date, datetime

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.models import User
from core.errors import AppError
from loyalty.models import EventRule

from .events import PROFILE_ID, EventReport, event_record
from .members import member_link_user

# A birthday set this close before it pays nothing that year.
LATE_SETTING_DAYS = 30
# Any year serves to check that a month has the day; a leap year admits 29 February.
LEAP_YEAR = 2000


@dataclass(frozen=True)
class Birthday:
    month: int
    day: int
    year: int | None = None


def birthday_of(user: User) -> Birthday | None:
    if user.birthday_month is None:
        return None
    return Birthday(month=user.birthday_month, day=user.birthday_day, year=user.birth_year)


def birthday_changeable_from(user: User) -> datetime | None:
    """When the birthday may next be changed; None: now (or it was never set)."""
    if user.birthday_set_at is None:
        return None
    allowed = _a_year_after(user.birthday_set_at)
    return allowed if allowed > timezone.now() else None


def profile_update(
    *,
    user: User,
    name: str | None = None,
    birthday: Birthday | None = None,
    language: str | None = None,
) -> User:
    """Change the fields given, the others as they are; returns the user as saved.

    The member is locked first (by linking it), then the account, as erasure locks them;
    a refusal (a birthday changed too soon) leaves the language as it was too."""
    with transaction.atomic():
        member = member_link_user(user=user, language=language or "")
        user = User.objects.select_for_update().get(pk=user.pk)
        if name is not None:
            user.name = name
        if birthday is not None and birthday != birthday_of(user):
            _birthday_set(user, birthday, at=timezone.now())
        user.save()
        if user.name and user.birthday_month is not None:
            report = EventReport(
                event_type=EventRule.BuiltIn.PROFILE_COMPLETED,
                external_id=PROFILE_ID,
                occurred_at=timezone.now(),
            )
            event_record(member_id=member.pk, report=report)
    return user


def birthday_validate(birthday: Birthday, *, today: date) -> None:
    """A real day of the year, and with its year a day in the past."""
    try:
        born = date(birthday.year or LEAP_YEAR, birthday.month, birthday.day)
    except ValueError:
        raise _invalid_birthday(_("There is no such day.")) from None
    if birthday.year is not None and not (birthday.year >= 1900 and born <= today):
        raise _invalid_birthday(_("A birthday is a day in the past, after 1900."))


def _birthday_set(user: User, birthday: Birthday, *, at: datetime) -> None:
    today = timezone.localdate(at)
    birthday_validate(birthday, today=today)
    changeable_from = birthday_changeable_from(user)
    if changeable_from is not None:
        raise AppError(
            "birthday_locked",
            _("A birthday can be changed once a year; the next change is possible from %(date)s.")
            % {"date": timezone.localdate(changeable_from).isoformat()},
            details={"changeable_from": timezone.localtime(changeable_from).isoformat()},
        )
    next_birthday = _next_birthday(birthday, today=today)
    user.birthday_month, user.birthday_day, user.birth_year = (
        birthday.month,
        birthday.day,
        birthday.year,
    )
    user.birthday_set_at = at
    late = (next_birthday - today).days < LATE_SETTING_DAYS
    user.birthday_unpaid_year = next_birthday.year if late else None


def _next_birthday(birthday: Birthday, *, today: date) -> date:
    """The birthday's next day from `today` on, 29 February kept on the 28th in other years."""
    this_year = _birthday_in(birthday, today.year)
    return this_year if this_year >= today else _birthday_in(birthday, today.year + 1)


def _birthday_in(birthday: Birthday, year: int) -> date:
    if (birthday.month, birthday.day) == (2, 29) and not calendar.isleap(year):
        return date(year, 2, 28)
    return date(year, birthday.month, birthday.day)


def _a_year_after(moment: datetime) -> datetime:
    local = timezone.localtime(moment)
    if (local.month, local.day) == (2, 29):
        local = local.replace(day=28)
    return local.replace(year=local.year + 1)


def _invalid_birthday(message) -> AppError:
    return AppError(
        "validation_error",
        _("The birthday is not valid; see details."),
        details={"birthday": [message]},
    )
