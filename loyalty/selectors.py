from datetime import datetime, timedelta

from django.db.models import Count, Q, Sum
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


def member_entries(*, member: Member | None):
    """The member's ledger entries for a history page; nothing for no member."""
    if member is None:
        return LedgerEntry.objects.none()
    return LedgerEntry.objects.filter(member=member).only(
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
