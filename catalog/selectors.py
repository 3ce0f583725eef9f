from django.db.models import Q
from django.utils import timezone

from loyalty.models import Member

from .models import RewardItem, RewardOrder

# A catalog is a shelf, not a warehouse: more than this many items at once is an error.
CATALOG_ITEMS_SHOWN = 200


def catalog_items_available():
    """Items on sale now, cheapest first."""
    now = timezone.now()
    return RewardItem.objects.filter(
        Q(active_from__isnull=True) | Q(active_from__lte=now),
        Q(active_until__isnull=True) | Q(active_until__gt=now),
        is_active=True,
    ).order_by("points", "pk")[:CATALOG_ITEMS_SHOWN]


def member_reward_orders(*, member: Member | None):
    if member is None:
        return RewardOrder.objects.none()
    return RewardOrder.objects.filter(member=member).select_related("item", "member")
