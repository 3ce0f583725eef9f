"""Rewards for points: order (points debited, stock taken), fulfil by code at any
store, cancel while pending (points back into their lots, stock back on the shelf).
Locks follow the house order: member, then lots, then the item's stock."""

import re
import secrets

from django.db import IntegrityError, transaction
from django.db.models import F, Sum
from django.db.models.functions import Greatest
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from core.errors import AppError
from loyalty.models import LedgerEntry, Member, Store
from loyalty.services.points import Cause, debit, member_lock, restore
from webhooks.models import EventType
from webhooks.payloads import entry_event_emit, reward_order_data, reward_order_event_emit

from .models import RewardItem, RewardOrder

# Easy to read aloud and to type: no 0/O, 1/I/L, 2/Z, 5/S, 8/B, U/V look-alikes.
CODE_ALPHABET = "ACDEFHJKMNPRTWXY34679"
CODE_LENGTH = 8
CODE_ATTEMPTS = 5
CODE_SEPARATORS = re.compile(r"[\s-]")
# The reason written on the entry that gives a cancelled order's points back; admin
# shows it in the reader's language.
CANCELLED_REASON = "reward order cancelled"


def reward_item_stock_change(*, item: RewardItem, shown: int | None, wanted: int | None) -> None:
    """A clerk changed the stock from `shown`, what the page showed, to `wanted`. Orders
    take and cancellations put back while the page is open, so the change is added to
    what is left now rather than written over it, never below zero. Between limited
    (a number) and unlimited (None) there is nothing to add to: the clerk's value holds."""
    if shown == wanted:
        return
    if shown is None or wanted is None:
        RewardItem.objects.filter(pk=item.pk).update(stock=wanted)
    else:
        RewardItem.objects.filter(pk=item.pk, stock__isnull=False).update(
            stock=Greatest(F("stock") + (wanted - shown), 0)
        )
    item.refresh_from_db(fields=["stock"])


def reward_order_place(
    *, member: Member, item_id: int, quantity: int, store: Store | None = None
) -> RewardOrder:
    """Order `quantity` of an item for the member: by a store, or by the customer (no store)."""
    item = _available_item(item_id)
    for attempt in range(CODE_ATTEMPTS):
        try:
            with transaction.atomic():
                return _place(member=member, item=item, quantity=quantity, store=store)
        except IntegrityError:
            # The code just drawn belongs to another open order: draw again.
            if attempt == CODE_ATTEMPTS - 1:
                raise


def reward_order_cancel(
    *, order_id: int, store: Store | None = None, member: Member | None = None, staff_user=None
) -> RewardOrder:
    """Cancel a pending order for the store that placed it or the member who owns it;
    `staff_user` names the clerk when it is done in admin on the member's behalf.
    A cancel sent again answers the cancelled order and gives nothing back twice."""
    with transaction.atomic():
        order = _lock_order(order_id=order_id, store=store, member=member)
        if order.status == RewardOrder.Status.CANCELLED:
            return order
        if order.status != RewardOrder.Status.PENDING:
            raise _wrong_status(order)
        order.cancel_entry = restore(
            member=order.member,
            debit_entry=order.debit_entry,
            kind=LedgerEntry.Kind.REWARD_CANCEL,
            cause=Cause(
                store=store,
                staff_user=staff_user,
                reference=order.code,
                reason=CANCELLED_REASON,
            ),
        )
        RewardItem.objects.filter(pk=order.item_id, stock__isnull=False).update(
            stock=F("stock") + order.quantity
        )
        order.status = RewardOrder.Status.CANCELLED
        order.closed_at = timezone.now()
        order.save(update_fields=["status", "cancel_entry", "closed_at"])
        entry_event_emit(order.cancel_entry, reward_order=reward_order_data(order))
        reward_order_event_emit(
            order,
            type=EventType.REWARD_ORDER_CANCELLED,
            balance=order.cancel_entry.balance_after,
        )
        return order


def reward_order_fulfil(*, store: Store, code: str) -> RewardOrder:
    """Hand the reward over at any store, against the pickup code the customer shows.
    The same store sending it again is told the order is fulfilled; another store is
    refused, since the reward was already handed over."""
    code = normalize_code(code)
    with transaction.atomic():
        order = _lock_pending_order_of_code(code)
        if order is None:
            closed = (
                RewardOrder.objects.select_related("member", "item")
                .filter(code=code)
                .order_by("-pk")
                .first()
            )
            if closed is None:
                raise AppError("invalid_code", _("No reward order has this pickup code."))
            # Fulfilled is final, so the retry needs no lock to answer it.
            if closed.status == RewardOrder.Status.FULFILLED and closed.fulfilled_by_id == store.pk:
                return closed
            raise _wrong_status(closed)
        order.status = RewardOrder.Status.FULFILLED
        order.fulfilled_by = store
        order.closed_at = timezone.now()
        order.save(update_fields=["status", "fulfilled_by", "closed_at"])
        reward_order_event_emit(
            order, type=EventType.REWARD_ORDER_FULFILLED, balance=order.member.balance
        )
        return order


def _lock_pending_order_of_code(code: str) -> RewardOrder | None:
    """Lock the member, then the pending order of the pickup code. A pickup moves no
    points, but its webhook event is numbered in the member's sequence, under the
    member's lock like every change of theirs, in the order a cancel takes them."""
    pending = RewardOrder.objects.filter(code=code, status=RewardOrder.Status.PENDING)
    found = pending.values("member_id").first()
    if found is None:
        return None
    member = member_lock(found["member_id"])
    # Cancelled meanwhile (its code perhaps drawn again for another member): not this one.
    order = (
        pending.filter(member_id=member.pk)
        .select_for_update(of=("self",))
        .select_related("item")
        .first()
    )
    if order is not None:
        order.member = member
    return order


def normalize_code(code: str) -> str:
    """What a clerk types: any case, spaces and dashes allowed."""
    return CODE_SEPARATORS.sub("", code).upper()


def _place(*, member: Member, item: RewardItem, quantity: int, store: Store | None):
    member = member_lock(member.pk)
    _refuse_over_member_limit(member=member, item=item, quantity=quantity)
    code = _new_code()
    entry = debit(
        member=member,
        kind=LedgerEntry.Kind.REWARD,
        points=item.points * quantity,
        cause=Cause(store=store, reference=code, reason=item.name[:255]),
    )
    _take_stock(item=item, quantity=quantity)
    order = RewardOrder.objects.create(
        item=item,
        member=member,
        store=store,
        quantity=quantity,
        points=item.points * quantity,
        cash_due=item.cash_price * quantity,
        code=code,
        debit_entry=entry,
    )
    order.member = member
    entry_event_emit(entry, reward_order=reward_order_data(order))
    reward_order_event_emit(order, type=EventType.REWARD_ORDER_CREATED, balance=entry.balance_after)
    return order


def _available_item(item_id: int) -> RewardItem:
    item = RewardItem.objects.with_on_sale_now().filter(pk=item_id).first()
    if item is None:
        raise AppError("not_found", _("No reward item has this id."))
    if not item.on_sale_now:
        raise AppError(
            "item_unavailable",
            _("This reward is not available now."),
            details={"item_id": item.pk},
        )
    return item


def _refuse_over_member_limit(*, member: Member, item: RewardItem, quantity: int) -> None:
    if item.per_member_limit is None:
        return
    held = (
        RewardOrder.objects.filter(member=member, item=item)
        .exclude(status=RewardOrder.Status.CANCELLED)
        .aggregate(total=Sum("quantity"))["total"]
        or 0
    )
    if held + quantity > item.per_member_limit:
        raise AppError(
            "limit_exceeded",
            _("A member may have at most %(limit)d of this reward.")
            % {"limit": item.per_member_limit},
            details={"limit": item.per_member_limit, "already": held, "requested": quantity},
        )


def _take_stock(*, item: RewardItem, quantity: int) -> None:
    """Decrement stock in the database, only if enough is left; never read-then-write."""
    taken = RewardItem.objects.filter(pk=item.pk, stock__gte=quantity).update(
        stock=F("stock") - quantity
    )
    if not taken and not RewardItem.objects.filter(pk=item.pk, stock__isnull=True).exists():
        raise AppError(
            "out_of_stock",
            _("Not enough of this reward is left."),
            details={"item_id": item.pk, "requested": quantity},
        )


def _new_code() -> str:
    while True:
        code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
        if not RewardOrder.objects.filter(code=code, status=RewardOrder.Status.PENDING).exists():
            return code


def _lock_order(*, order_id: int, store: Store | None, member: Member | None) -> RewardOrder:
    """Lock the member, then the order; only its store or its member reaches it."""
    owned = RewardOrder.objects.filter(pk=order_id)
    owned = owned.filter(store=store) if store is not None else owned.filter(member=member)
    found = owned.values("member_id").first()
    if found is None:
        raise AppError("not_found", _("No reward order with this id is yours to change."))
    locked_member = member_lock(found["member_id"])
    # The item row is joined, not locked: its stock is locked last, by the update.
    order = (
        RewardOrder.objects.select_for_update(of=("self",)).select_related("item").get(pk=order_id)
    )
    order.member = locked_member
    return order


def _wrong_status(order: RewardOrder) -> AppError:
    return AppError(
        "invalid_state",
        _("The reward order is %(status)s; that cannot be done now.")
        % {"status": order.get_status_display()},
        details={"status": order.status},
    )
