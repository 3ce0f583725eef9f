from loyalty.models import Member, Store

from .models import RewardItem, RewardOrder
from .services import normalize_code

# A catalog is a shelf, not a warehouse: more than this many items at once is an error.
CATALOG_ITEMS_SHOWN = 200


def catalog_items_available():
    """Items on sale now, cheapest first."""
    return RewardItem.objects.on_sale().order_by("points", "pk")[:CATALOG_ITEMS_SHOWN]


def member_reward_orders(*, member: Member | None):
    if member is None:
        return RewardOrder.objects.none()
    return RewardOrder.objects.filter(member=member).select_related("item", "member")


def store_reward_order(*, store: Store, order_id: int) -> RewardOrder | None:
    """A reward order as it is now, for the store that placed it only."""
    orders = RewardOrder.objects.select_related("item", "member")
    return orders.filter(pk=order_id, store=store).first()


def reward_order_by_code(*, code: str) -> RewardOrder | None:
    """The order a pickup code, as a clerk types it, would hand over: the open one, else
    the last one closed with it (a code comes back once its order is closed)."""
    orders = RewardOrder.objects.select_related("item", "member").filter(code=normalize_code(code))
    return (
        orders.filter(status=RewardOrder.Status.PENDING).first() or orders.order_by("-pk").first()
    )
