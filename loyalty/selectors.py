from django.db.models import Sum

from loyalty.models import LedgerEntry, Lot, Member

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
