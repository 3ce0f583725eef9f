from django.db.models import Sum

from loyalty.models import Lot, Member

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
