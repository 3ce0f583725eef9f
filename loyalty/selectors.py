from datetime import datetime, timedelta

from django.db.models import Count, FilteredRelation, Q, Subquery, Sum
from django.db.models.functions import Coalesce, TruncMonth

from loyalty.models import LedgerCheckRun, LedgerEntry, Lot, Member

# The nearest expiry dates are what a customer or a clerk acts on; more is noise.
EXPIRING_DATES_SHOWN = 20


def member_by_phone(*, phone: str) -> Member | None:
    return Member.objects.filter(phone=phone).first()


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


def balance_and_expiring_of_user(*, user) -> tuple[int, list[dict]]:
    """The customer's balance and expiring points (as `member_expiring_points`), in one
    query; 0 and none when the customer has no member yet."""
    rows = list(
        Member.objects.filter(user=user)
        .annotate(
            open_lots=FilteredRelation(
                "lots", condition=Q(lots__remaining__gt=0, lots__expires_at__isnull=False)
            )
        )
        .values_list("balance", "open_lots__expires_at")
        .annotate(points=Sum("open_lots__remaining"))
        .order_by("open_lots__expires_at")[:EXPIRING_DATES_SHOWN]
    )
    if not rows:
        return 0, []
    expiring = [
        {"expires_at": expires_at, "points": points}
        for _balance, expires_at, points in rows
        if expires_at is not None
    ]
    return rows[0][0], expiring


def entries_of_user(*, user):
    """The customer's ledger entries as rows for a history page, by the index on
    (member, -id): the member is found by a subquery, not a join the planner might walk."""
    member_id = Member.objects.filter(user=user).values("pk")[:1]
    return LedgerEntry.objects.filter(member_id=Subquery(member_id)).values(
        "id", "kind", "points", "balance_after", "created_at", "reference"
    )


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
