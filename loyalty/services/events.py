"""Points for events other than purchases: the sign-up, a birthday, a completed
profile, the daily check-in, and the custom events a storefront reports.

Every event goes through `event_record`. In one transaction it locks the member
first (the house lock order, docs/architecture.md) and looks for an earlier record
of the same (member, type, external id): a retry gets that record and is never paid
twice. Otherwise it takes what the event's rule gives, within the rule's limit per
member and period, the program's daily cap on bonus points and the rule's budget,
credits it through the points core and records the event, and writes the points'
webhook event. An event that gets nothing is recorded too, with 0 points and the
reason (docs/policies.md, "Events"), and tells no webhook.

The limits are counted from the member's own events, under the member's lock, so
concurrent events of one member cannot both pass a limit; the budget is taken by a
conditional update of the rule's row, which holds its lock until the commit.
"""

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.db import transaction
from django.db.models import F, Q, Sum
from django.utils import timezone
from django.utils.crypto import salted_hmac
from django.utils.translation import gettext_lazy as _

from core.errors import AppError
from loyalty.expiry_policy import new_points_expire_at
from loyalty.models import (
    EntryKind,
    EventRule,
    Member,
    MemberEvent,
    Program,
    SignupBonusPaid,
    Store,
)
from webhooks.payloads import entry_event_emit

from .members import member_lock_or_create
from .points import Cause, credit, member_lock
from .promotions import period_start

Outcome = MemberEvent.Outcome
BuiltIn = EventRule.BuiltIn

# The external ids of the events that happen once per member.
SIGNUP_ID = "signup"
PROFILE_ID = "profile"


@dataclass(frozen=True)
class EventReport:
    """An event as it is reported: by this program, or by a store for a custom type."""

    event_type: str
    external_id: str
    occurred_at: datetime
    store: object = None
    # Why the event pays nothing whatever its rule says (a late birthday), decided by
    # the caller, which knows the customer.
    forfeited: str = ""


def event_record(*, member_id: int, report: EventReport) -> tuple[MemberEvent, bool]:
    """Record the event and pay what its rule allows; returns the record and whether it
    is new (False: the same event was recorded before, and this one changed nothing)."""
    with transaction.atomic():
        member = member_lock(member_id)
        earlier = MemberEvent.objects.filter(
            member=member, event_type=report.event_type, external_id=report.external_id
        ).first()
        if earlier is not None:
            return earlier, False
        return _event_paid(member=member, report=report), True


def checkin_record(*, member_id: int, at: datetime) -> tuple[MemberEvent, bool]:
    """The member's check-in of the local day of `at`: one a day, a retry the same day
    answers the first."""
    day = timezone.localdate(at)
    report = EventReport(event_type=BuiltIn.CHECKIN, external_id=day.isoformat(), occurred_at=at)
    return event_record(member_id=member_id, report=report)


def store_event_record(
    *, store: Store, phone: str, event_type: str, external_id: str, occurred_at: datetime
) -> tuple[MemberEvent, bool]:
    """A custom event a store reports for the member of an E.164 phone, who is created on
    their first event as on a first purchase. The built-in types are the program's own to
    report, and a type without a rule is no event the merchant declared."""
    rule = EventRule.objects.filter(event_type=event_type).first()
    if rule is None or rule.is_built_in:
        raise AppError(
            "unknown_event_type",
            _("The program has no event of this type that a store may report."),
            details={"type": event_type},
        )
    with transaction.atomic():
        member = member_lock_or_create(phone=phone)
    report = EventReport(
        event_type=event_type, external_id=external_id, occurred_at=occurred_at, store=store
    )
    return event_record(member_id=member.pk, report=report)


def signup_bonus_pay(*, member: Member, at: datetime) -> MemberEvent:
    """The sign-up bonus of a customer who has just signed up: never a second time for
    the same phone, even after the first member was erased."""
    forfeited = Outcome.ALREADY_PAID if _signup_paid_before(member.phone) else ""
    report = EventReport(
        event_type=BuiltIn.SIGNUP, external_id=SIGNUP_ID, occurred_at=at, forfeited=forfeited
    )
    event, _new = event_record(member_id=member.pk, report=report)
    return event


def streak_points(rule: EventRule, streak: int) -> int:
    """What a check-in on day `streak` of a streak earns: the table's day, which starts a
    new round after its last; the rule's points when it has no table."""
    table = rule.streak_points
    if not table:
        return rule.points
    return table[(streak - 1) % len(table)]


def _event_paid(*, member: Member, report: EventReport) -> MemberEvent:
    at = timezone.now()
    day = timezone.localdate(at)
    program = Program.current()
    rule = EventRule.objects.filter(event_type=report.event_type).first()
    streak = _streak_today(member, day) if report.event_type == BuiltIn.CHECKIN else None
    points, outcome = _points_allowed(
        member=member,
        rule=rule,
        report=report,
        at=at,
        cap_left=_cap_left(member=member, day=day, cap=program.bonus_daily_cap),
        streak=streak,
    )
    entry = None
    if points:
        if report.event_type == BuiltIn.SIGNUP:
            SignupBonusPaid.objects.create(phone_digest=_phone_digest(member.phone))
        entry = credit(
            member=member,
            kind=EntryKind.EVENT,
            points=points,
            expires_at=new_points_expire_at(program.expiry_policy, at),
            cause=Cause(
                store=report.store,
                reference=report.external_id,
                reason=entry_reason(report.event_type, streak),
            ),
        )
    event = MemberEvent.objects.create(
        member=member,
        rule=rule,
        event_type=report.event_type,
        external_id=report.external_id,
        store=report.store,
        occurred_at=report.occurred_at,
        local_day=day,
        points=points,
        outcome=outcome,
        streak=streak,
        entry=entry,
        created_at=at,
    )
    if entry is not None:
        entry_event_emit(
            entry,
            event={"type": report.event_type, "external_id": report.external_id, "streak": streak},
        )
    return event


def entry_reason(event_type: str, streak: int | None) -> str:
    """What the ledger entry keeps of its event for its description (loyalty/history.py):
    the type, and a check-in's day of the streak."""
    return event_type if streak is None else f"{event_type}: {streak}"


def _points_allowed(
    *, member, rule, report: EventReport, at: datetime, cap_left: int, streak: int | None
) -> tuple[int, str]:
    """The points the event earns and the outcome, the checks in the order a customer
    would ask them: is it on, may I have it, have I had it enough, how much is left."""
    if not _running(rule, at):
        return 0, Outcome.NOT_RUNNING
    if report.forfeited:
        return 0, report.forfeited
    if _limit_reached(member=member, rule=rule, at=at):
        return 0, Outcome.LIMIT_REACHED
    wanted = streak_points(rule, streak) if streak is not None else rule.points
    points = min(wanted, cap_left)
    if points == 0:
        return 0, Outcome.DAILY_CAP
    if not _budget_taken(rule, points):
        return 0, Outcome.BUDGET_SPENT
    return points, Outcome.PAID if points == wanted else Outcome.CAPPED


def _running(rule: EventRule | None, at: datetime) -> bool:
    return (
        rule is not None
        and rule.is_active
        and (rule.starts_at is None or rule.starts_at <= at)
        and (rule.ends_at is None or at < rule.ends_at)
    )


def _limit_reached(*, member: Member, rule: EventRule, at: datetime) -> bool:
    """Whether the member has had the rule's points as often as it allows in the
    period holding `at` (events that paid nothing do not count)."""
    if rule.limit_per_member is None:
        return False
    since = period_start(rule.limit_period, timezone.localtime(at))
    paid = MemberEvent.objects.filter(member=member, rule=rule, points__gt=0, local_day__gte=since)
    return paid.count() >= rule.limit_per_member


# More points than any rule gives: what "no cap" leaves.
_NO_CAP = 2**62


def _cap_left(*, member: Member, day: date, cap: int | None) -> int:
    """What the program's daily cap on bonus points leaves the member today; the cap
    counts every event's points, whatever its rule."""
    if cap is None:
        return _NO_CAP
    today = MemberEvent.objects.filter(member=member, local_day=day).aggregate(points=Sum("points"))
    return max(cap - (today["points"] or 0), 0)


def _budget_taken(rule: EventRule, points: int) -> bool:
    """Take `points` from the rule's budget, if it has one and they fit. Rules without
    a budget are not written, so their events do not queue on one row."""
    if rule.budget_points is None:
        return True
    fits = Q(points_awarded__lte=F("budget_points") - points)
    return bool(
        EventRule.objects.filter(fits, pk=rule.pk).update(
            points_awarded=F("points_awarded") + points
        )
    )


def _streak_today(member: Member, day: date) -> int:
    """The streak a check-in today makes: one more than yesterday's, else day 1."""
    yesterday = (
        MemberEvent.objects.filter(
            member=member, event_type=BuiltIn.CHECKIN, local_day=day - timedelta(days=1)
        )
        .values_list("streak", flat=True)
        .first()
    )
    return (yesterday or 0) + 1


def _signup_paid_before(phone: str) -> bool:
    return SignupBonusPaid.objects.filter(phone_digest=_phone_digest(phone)).exists()


def _phone_digest(phone: str) -> str:
    """A keyed hash of the phone: enough to know it again, not to read it back."""
    return salted_hmac("loyalty.signup-bonus", phone, algorithm="sha256").hexdigest()
