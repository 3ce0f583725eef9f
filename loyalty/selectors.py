from datetime import datetime, time, timedelta

from django.db import connection
from django.db.models import Count, F, Q, Sum
from django.db.models.functions import Abs, Coalesce, TruncMonth
from django.utils import timezone

from loyalty.models import (
    Adjustment,
    EarningRule,
    EventRule,
    LedgerCheckRun,
    LedgerEntry,
    Lot,
    Member,
    MemberEvent,
    Redemption,
    Store,
)

# The nearest expiry dates are what a customer or a clerk acts on; more is noise.
EXPIRING_DATES_SHOWN = 20
# The largest value of a bigint id: a first history page starts below it.
LARGEST_ID = 2**63 - 1


def member_by_phone(*, phone: str) -> Member | None:
    """Every hold and lookup starts here; as plain SQL it costs half the ORM's query."""
    return next(iter(Member.objects.raw(MEMBER_BY_PHONE, [phone])), None)


MEMBER_BY_PHONE = "SELECT * FROM loyalty_member WHERE phone = %s"


def member_expiring_points(*, member: Member) -> list[dict]:
    """The member's points that will expire, summed per expiry instant, soonest first."""
    return list(
        Lot.objects.filter(member=member, remaining__gt=0, expires_at__isnull=False)
        .values("expires_at")
        .annotate(points=Sum("remaining"))
        .order_by("expires_at")[:EXPIRING_DATES_SHOWN]
    )


def member_of_user(*, user) -> Member | None:
    return Member.objects.filter(user=user).first()


def member_profile_completed(*, member: Member) -> bool:
    """Whether the member's profile was once complete: its event is recorded then, paid
    or not, and never again."""
    return MemberEvent.objects.filter(
        member=member, event_type=EventRule.BuiltIn.PROFILE_COMPLETED
    ).exists()


def member_events(*, member: Member | None):
    """The member's events with their rules, for a page newest first; none for a
    customer without a member yet."""
    if member is None:
        return MemberEvent.objects.none()
    return MemberEvent.objects.filter(member=member).select_related("rule")


def store_redemption(*, store: Store, redemption_id: int) -> Redemption | None:
    """A redemption as it is now, for the store that made it only."""
    return Redemption.objects.select_related("member").filter(pk=redemption_id, store=store).first()


def points_adjusted_alone_today(*, member_id: int, staff_user_id: int) -> int:
    """The points a staff member moved for a member today, in the merchant's time zone,
    by adjustments that applied at once, with no second staff member: additions and
    removals alike, since each was a decision of one person."""
    merchant_zone = timezone.get_default_timezone()
    today = timezone.localdate(timezone=merchant_zone)
    return Adjustment.objects.filter(
        member_id=member_id,
        requested_by_id=staff_user_id,
        decided_by_id=F("requested_by_id"),
        status=Adjustment.Status.APPLIED,
        created_at__gte=datetime.combine(today, time.min, tzinfo=merchant_zone),
    ).aggregate(points=Coalesce(Sum(Abs("points")), 0))["points"]


# The customer's two hottest reads, each one round trip of plain SQL: building these
# through the ORM cost the worker more than the database spent answering them.
BALANCE_AND_EXPIRING_OF_USER = f"""
SELECT member.balance, lot.expires_at, CAST(SUM(lot.remaining) AS BIGINT)
FROM loyalty_member AS member
LEFT JOIN loyalty_lot AS lot
    ON lot.member_id = member.id AND lot.remaining > 0 AND lot.expires_at IS NOT NULL
WHERE member.user_id = %s
GROUP BY member.id, lot.expires_at
ORDER BY lot.expires_at
LIMIT {EXPIRING_DATES_SHOWN}
"""

# The member's language comes once per page, from a subquery PostgreSQL runs once.
ENTRIES_OF_USER = """
SELECT entry.id, entry.kind, entry.points, entry.balance_after, entry.created_at,
    entry.reference, entry.reason, store.name,
    (SELECT language FROM loyalty_member WHERE user_id = %(user)s)
FROM loyalty_ledgerentry AS entry
LEFT JOIN loyalty_store AS store ON store.id = entry.store_id
WHERE entry.member_id = (SELECT id FROM loyalty_member WHERE user_id = %(user)s)
    AND entry.id < %(before)s
ORDER BY entry.id DESC
LIMIT %(limit)s
"""


def balance_and_expiring_of_user(*, user) -> tuple[int, list[dict]]:
    """The customer's balance and expiring points (as `member_expiring_points`);
    0 and none when the customer has no member yet."""
    with connection.cursor() as cursor:
        cursor.execute(BALANCE_AND_EXPIRING_OF_USER, [user.pk])
        rows = cursor.fetchall()
    if not rows:
        return 0, []
    expiring = [
        {"expires_at": expires_at, "points": points}
        for _balance, expires_at, points in rows
        if expires_at is not None
    ]
    return rows[0][0], expiring


def entries_of_user(*, user, before_id: int | None, limit: int) -> list[dict]:
    """The customer's ledger entries, newest first, older than `before_id` if given; by
    the index on (member, -id), the member found by a subquery the planner cannot walk.
    Each row carries what its description is made of: the reason, the store's name and
    the member's language (loyalty/history.py)."""
    before = LARGEST_ID if before_id is None else before_id
    with connection.cursor() as cursor:
        cursor.execute(ENTRIES_OF_USER, {"user": user.pk, "before": before, "limit": limit})
        rows = cursor.fetchall()
    return [
        {
            "id": entry_id,
            "kind": kind,
            "points": points,
            "balance_after": balance_after,
            "created_at": created_at,
            "reference": reference,
            "reason": reason,
            "store": store,
            "language": language,
        }
        for (
            entry_id,
            kind,
            points,
            balance_after,
            created_at,
            reference,
            reason,
            store,
            language,
        ) in rows
    ]


# --- The manager's dashboard: a few aggregates, each one query whatever the data size.


def points_outstanding() -> dict:
    """The merchant's liability in points: what members with a positive balance hold.
    A negative balance (a refund's debt) is owed to the merchant, not netted against it."""
    return Member.objects.filter(balance__gt=0).aggregate(
        points=Coalesce(Sum("balance"), 0), members=Count("pk")
    )


def points_moved_per_month(*, since: datetime, until: datetime) -> list[dict]:
    """Points moved per local calendar month and entry kind from `since` to before `until`,
    one row per pair."""
    return list(
        LedgerEntry.objects.filter(created_at__gte=since, created_at__lt=until)
        .annotate(month=TruncMonth("created_at"))
        .values("month", "kind")
        .annotate(points=Sum("points"))
        .order_by("month", "kind")
    )


def points_moved_since(*, since: datetime) -> dict[str, int]:
    """Points moved per entry kind from `since` on."""
    return dict(
        LedgerEntry.objects.filter(created_at__gte=since)
        .values("kind")
        .annotate(points=Sum("points"))
        .order_by()
        .values_list("kind", "points")
    )


def points_expiring(*, now: datetime, within: list[timedelta]) -> list[dict]:
    """Points that expire (and members they belong to) within each period from `now`;
    points past their date that the nightly job has not expired yet count as expiring."""
    aggregates = {}
    for index, period in enumerate(within):
        due = Q(expires_at__lte=now + period)
        aggregates[f"points_{index}"] = Coalesce(Sum("remaining", filter=due), 0)
        aggregates[f"members_{index}"] = Count("member_id", distinct=True, filter=due)
    totals = Lot.objects.filter(remaining__gt=0, expires_at__lte=now + max(within)).aggregate(
        **aggregates
    )
    return [
        {"within": period, "points": totals[f"points_{i}"], "members": totals[f"members_{i}"]}
        for i, period in enumerate(within)
    ]


def ledger_check_latest() -> LedgerCheckRun | None:
    return LedgerCheckRun.objects.order_by("-started_at").first()


# How far ahead the customer's app hears of a promotion about to start.
PROMOTIONS_AHEAD = timedelta(days=7)


def promotions_running_and_soon(*, now: datetime) -> list:
    """The promotions switched on that run now or start within PROMOTIONS_AHEAD, soonest
    first; exclusions are no news to a customer."""
    return list(
        EarningRule.objects.filter(is_active=True)
        .exclude(kind=EarningRule.Kind.EXCLUSION)
        .filter(Q(ends_at__isnull=True) | Q(ends_at__gt=now))
        .filter(Q(starts_at__isnull=True) | Q(starts_at__lte=now + PROMOTIONS_AHEAD))
        .order_by(F("starts_at").asc(nulls_first=True), "pk")
    )
