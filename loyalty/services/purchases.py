"""Purchases earn points; refunds take back what the refunded amount earned."""

from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from config.errors import AppError
from loyalty.expiry import ExpiryPolicy
from loyalty.models import LedgerEntry, Lot, Program, Purchase, Refund, Store

from .members import member_lock_or_create
from .points import Cause, credit, debit, member_lock


@dataclass(frozen=True)
class Recorded:
    """A purchase or refund, and whether this call created it (False: a replay)."""

    record: Purchase | Refund
    created: bool


def points_for_amount(amount: Decimal, earn_rate: Decimal) -> int:
    """floor(amount * rate): points are whole and never rounded up."""
    return int((amount * earn_rate).to_integral_value(rounding=ROUND_FLOOR))


def expires_at_for_new_points(program: Program | None = None):
    """When points credited now expire, under the program's current policy."""
    program = program or Program.current()
    return ExpiryPolicy.parse(program.expiry_policy).expires_at(timezone.now())


def purchase_record(*, store: Store, phone: str, order_id: str, amount: Decimal) -> Recorded:
    """Record a purchase once per (store, order_id) and credit the points it earns."""
    existing = _purchase_of_order(store=store, order_id=order_id)
    if existing is not None:
        return _replayed_purchase(existing, phone=phone, amount=amount)
    try:
        with transaction.atomic():
            return Recorded(_earn(store=store, phone=phone, order_id=order_id, amount=amount), True)
    except IntegrityError:
        # A concurrent request for the same order won the race; answer as its replay.
        existing = _purchase_of_order(store=store, order_id=order_id)
        if existing is None:
            raise
        return _replayed_purchase(existing, phone=phone, amount=amount)


def refund_record(*, store: Store, order_id: str, refund_id: str, amount: Decimal) -> Recorded:
    """Record a refund once per (purchase, refund_id) and reverse what it earned:
    min(earned, floor(total refunded * rate at earn time)) - already reversed."""
    purchase = _purchase_of_order(store=store, order_id=order_id)
    if purchase is None:
        raise AppError("not_found", _("No purchase with this order id for this store."))
    with transaction.atomic():
        member = member_lock(purchase.member_id)
        purchase = Purchase.objects.select_for_update().get(pk=purchase.pk)
        existing = purchase.refunds.filter(refund_id=refund_id).first()
        if existing is not None:
            return _replayed_refund(existing, amount=amount)
        _refuse_refund_beyond_purchase(purchase, amount)
        return Recorded(_reverse(member, purchase, refund_id=refund_id, amount=amount), True)


def _earn(*, store, phone, order_id, amount) -> Purchase:
    member = member_lock_or_create(phone=phone)
    program = Program.current()
    points = points_for_amount(amount, program.earn_rate)
    entry = None
    if points:
        entry = credit(
            member=member,
            kind=LedgerEntry.Kind.EARN,
            points=points,
            expires_at=expires_at_for_new_points(program),
            cause=Cause(store=store, reference=order_id),
        )
    purchase = Purchase.objects.create(
        store=store,
        order_id=order_id,
        member=member,
        amount=amount,
        earn_rate=program.earn_rate,
        points_earned=points,
        earn_entry=entry,
        balance_after=member.balance,
    )
    purchase.member = member
    return purchase


def _reverse(member, purchase: Purchase, *, refund_id: str, amount: Decimal) -> Refund:
    refunded_total = purchase.refunded_amount + amount
    owed = min(purchase.points_earned, points_for_amount(refunded_total, purchase.earn_rate))
    points = owed - purchase.points_reversed
    entry = None
    if points:
        entry = debit(
            member=member,
            kind=LedgerEntry.Kind.EARN_REVERSAL,
            points=points,
            cause=Cause(store=purchase.store, reference=f"{purchase.order_id}/{refund_id}"),
            allow_debt=True,
            lot_first=Lot.objects.filter(entry_id=purchase.earn_entry_id).first(),
        )
    Purchase.objects.filter(pk=purchase.pk).update(
        refunded_amount=F("refunded_amount") + amount,
        points_reversed=F("points_reversed") + points,
    )
    refund = Refund.objects.create(
        purchase=purchase,
        refund_id=refund_id,
        amount=amount,
        points_reversed=points,
        reversal_entry=entry,
        balance_after=member.balance,
    )
    refund.purchase.member = member
    return refund


def _refuse_refund_beyond_purchase(purchase: Purchase, amount: Decimal) -> None:
    refundable = purchase.amount - purchase.refunded_amount
    if amount > refundable:
        raise AppError(
            "refund_exceeds_purchase",
            _("The refunds would exceed the purchase amount."),
            details={
                "purchase_amount": str(purchase.amount),
                "refunded_amount": str(purchase.refunded_amount),
                "refundable_amount": str(refundable),
            },
        )


def _purchase_of_order(*, store: Store, order_id: str) -> Purchase | None:
    return (
        Purchase.objects.select_related("member", "store")
        .filter(store=store, order_id=order_id)
        .first()
    )


def _replayed_purchase(purchase: Purchase, *, phone: str, amount: Decimal) -> Recorded:
    if purchase.member.phone != phone or purchase.amount != amount:
        raise AppError(
            "idempotency_conflict",
            _("This order id was already reported with a different phone or amount."),
            details={"order_id": purchase.order_id},
        )
    return Recorded(purchase, False)


def _replayed_refund(refund: Refund, *, amount: Decimal) -> Recorded:
    if refund.amount != amount:
        raise AppError(
            "idempotency_conflict",
            _("This refund id was already reported with a different amount."),
            details={"refund_id": refund.refund_id},
        )
    return Recorded(refund, False)
