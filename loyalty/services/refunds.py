"""Refunds take back what the refunded money earned (docs/policies.md, "Refunds").

A refund names an amount, and takes back the purchase's points in proportion to it;
or it names lines of the basket, and takes back what those lines earned, in
proportion to their money refunded. Either way the points taken back are a function
of what has been refunded in all, less what earlier refunds took: partial refunds
add up exactly to one whole refund, and never take more than was earned. A purchase
is refunded one way or the other, as its first refund did, since the two proportions
do not add up to the same whole.

The purchase's lock guards its lines: every change to them is made under it.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal

from django.db import transaction
from django.db.models import F, Sum
from django.utils.translation import gettext_lazy as _

from core.errors import AppError
from loyalty.earning import ALL, Line, earning
from loyalty.models import (
    EarnPart,
    LedgerEntry,
    Lot,
    Purchase,
    PurchaseLine,
    Refund,
    RefundLine,
    Store,
)
from webhooks.payloads import entry_event_emit

from .points import Cause, debit, member_lock
from .promotions import uses_given_back
from .purchases import Recorded, points_for_amount, purchase_of_order

CENT = Decimal("0.01")


@dataclass(frozen=True)
class LineRefund:
    """A line a refund names: some of its units, or some of its money."""

    line_id: str
    quantity: int | None = None
    amount: Decimal | None = None


@dataclass(frozen=True)
class LineMove:
    """What a refund takes of one line: units, money and the points they earned."""

    line: PurchaseLine
    quantity: int | None
    amount: Decimal
    points: int = 0


def refund_record(
    *,
    store: Store,
    order_id: str,
    refund_id: str,
    amount: Decimal | None = None,
    lines: Sequence[LineRefund] = (),
) -> Recorded:
    """Record a refund once per (purchase, refund_id) and take back the points the money
    it refunds earned: by amount (`amount`) or by line (`lines`, and `amount` if sent
    must be their money)."""
    purchase = purchase_of_order(store=store, order_id=order_id)
    if purchase is None:
        raise AppError("not_found", _("No purchase with this order id for this store."))
    with transaction.atomic():
        member = member_lock(purchase.member_id)
        purchase = Purchase.objects.select_for_update().get(pk=purchase.pk)
        existing = purchase.refunds.filter(refund_id=refund_id).first()
        if existing is not None:
            return _replayed_refund(existing, amount=amount, lines=lines)
        if lines:
            moves = _line_moves(purchase, lines, amount=amount)
            amount = sum((move.amount for move in moves), Decimal(0))
        else:
            moves = []
            _refuse_amount_refund_of_a_purchase_refunded_by_line(purchase)
            _refuse_refund_beyond_purchase(purchase, amount)
        refund = _reversal_record(member, purchase, refund_id=refund_id, amount=amount, moves=moves)
        return Recorded(refund, True)


def points_owed_back(purchase: Purchase, refunded_total: Decimal) -> int:
    """What a refunded total takes back of a purchase refunded by amount, never more than
    it earned. A purchase earned at the flat rate gives back what the money earned at that
    rate; one earned under the earning rules (bonuses, multipliers, exclusions) gives back
    its points in proportion to the money, and all of them for all of it."""
    if not purchase.parts.exists():
        return min(purchase.points_earned, points_for_amount(refunded_total, purchase.earn_rate))
    if refunded_total >= purchase.amount:
        return purchase.points_earned
    return _floor(purchase.points_earned * refunded_total / purchase.amount)


def line_points_owed_back(earned: int, amount: Decimal, refunded: Decimal) -> int:
    """What a line's refunded money takes back of the points the line earned: in
    proportion, floored, and all of them for all of it."""
    if refunded >= amount:
        return earned
    return _floor(earned * refunded / amount)


def points_earned_by_line(purchase: Purchase) -> dict[str, int]:
    """The points each line of the purchase earned, bonuses of the purchase aside. An earn
    under the rules recorded them; one at the flat rate is dealt by the same floors."""
    recorded = (
        EarnPart.objects.filter(purchase=purchase, line__isnull=False)
        .values_list("line__line_id")
        .annotate(points=Sum("points"))
    )
    if recorded:
        return dict(recorded)
    lines = purchase.lines.order_by("id")
    dealt = earning(
        lines=[Line(line.line_id, line.sku, line.category, line.amount) for line in lines],
        earn_rate=purchase.earn_rate,
        rules=[],
        stacking=ALL,
        store_id=purchase.store_id,
        at=purchase.created_at,
    )
    return {part.line_id: part.points for part in dealt.parts}


def _line_moves(purchase: Purchase, requested: Sequence[LineRefund], *, amount) -> list[LineMove]:
    """What each named line gives up, its points taken back included, once the request
    is found to fit what is left of the lines."""
    lines = {line.line_id: line for line in purchase.lines.all()}
    _refuse_line_refund_of(purchase, lines)
    moves = [_line_move(_line_named(lines, request.line_id), request) for request in requested]
    money = sum((move.amount for move in moves), Decimal(0))
    if money == 0:
        raise AppError(
            "refund_exceeds_line", _("The lines named have no money left to refund."), details={}
        )
    if amount is not None and amount != money:
        raise AppError(
            "validation_error",
            _("The lines refund %(lines)s, not the amount %(amount)s sent.")
            % {"lines": f"{money:.2f}", "amount": f"{amount:.2f}"},
            details={"amount": [_("Leave the amount out, or send the lines' money.")]},
        )
    earned = points_earned_by_line(purchase)
    return [_with_points(move, earned[move.line.line_id]) for move in moves]


def _line_move(line: PurchaseLine, request: LineRefund) -> LineMove:
    """Units refunded are worth their share of the line, rounded to the cent, and the
    last of them what is left of its money; money refunded is taken as sent."""
    money_left = line.amount - line.refunded_amount
    if request.quantity is None:
        if request.amount > money_left:
            raise _line_exceeded(line, money_left)
        return LineMove(line, None, request.amount)
    units_after = line.refunded_quantity + request.quantity
    if units_after > line.quantity:
        raise _line_exceeded(line, money_left)
    if units_after == line.quantity:
        return LineMove(line, request.quantity, money_left)
    share = _unit_share(line, units_after) - _unit_share(line, line.refunded_quantity)
    return LineMove(line, request.quantity, min(share, money_left))


def _unit_share(line: PurchaseLine, units: int) -> Decimal:
    return (line.amount * units / line.quantity).quantize(CENT, rounding=ROUND_HALF_UP)


def _with_points(move: LineMove, earned: int) -> LineMove:
    line = move.line
    before = line_points_owed_back(earned, line.amount, line.refunded_amount)
    after = line_points_owed_back(earned, line.amount, line.refunded_amount + move.amount)
    return LineMove(line, move.quantity, move.amount, after - before)


def _reversal_record(member, purchase: Purchase, *, refund_id, amount, moves) -> Refund:
    """Take the points back, and write the refund, its lines, what is left to refund and
    the reversal's webhook event (none when it takes no points back).
    The refund that completes the purchase takes back all that is left, bonuses too, and
    gives the promotions' uses back (before the lots, in the order of docs/architecture.md)."""
    refunded_total = purchase.refunded_amount + amount
    if refunded_total == purchase.amount:
        points = purchase.points_earned - purchase.points_reversed
        uses_given_back(purchase)
    elif moves:
        points = sum(move.points for move in moves)
    else:
        points = points_owed_back(purchase, refunded_total) - purchase.points_reversed
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
    _refunded_lines_record(refund, moves)
    refund.purchase.member = member
    if entry is not None:
        entry_event_emit(
            entry,
            purchase={"order_id": purchase.order_id, "amount": f"{purchase.amount:.2f}"},
            refund={"refund_id": refund_id, "amount": f"{amount:.2f}"},
        )
    return refund


def _refunded_lines_record(refund: Refund, moves: list[LineMove]) -> None:
    for move in moves:
        PurchaseLine.objects.filter(pk=move.line.pk).update(
            refunded_quantity=F("refunded_quantity") + (move.quantity or 0),
            refunded_amount=F("refunded_amount") + move.amount,
            points_reversed=F("points_reversed") + move.points,
        )
    RefundLine.objects.bulk_create(
        RefundLine(
            refund=refund,
            line=move.line,
            quantity=move.quantity,
            amount=move.amount,
            points_reversed=move.points,
        )
        for move in moves
    )


def _refuse_line_refund_of(purchase: Purchase, lines: dict[str, PurchaseLine]) -> None:
    if not lines:
        raise AppError(
            "refund_mode_mismatch",
            _("This purchase was reported without lines: refund it by amount."),
            details={"order_id": purchase.order_id},
        )
    refunded_by_line = sum((line.refunded_amount for line in lines.values()), Decimal(0))
    if purchase.refunded_amount > refunded_by_line:
        raise AppError(
            "refund_mode_mismatch",
            _("This purchase was refunded by amount before: refund it by amount."),
            details={"order_id": purchase.order_id},
        )


def _refuse_amount_refund_of_a_purchase_refunded_by_line(purchase: Purchase) -> None:
    if RefundLine.objects.filter(refund__purchase=purchase).exists():
        raise AppError(
            "refund_mode_mismatch",
            _("This purchase was refunded by line before: name the lines of this refund."),
            details={"order_id": purchase.order_id},
        )


def _line_named(lines: dict[str, PurchaseLine], line_id: str) -> PurchaseLine:
    if line_id not in lines:
        raise AppError(
            "unknown_line",
            _("The purchase has no line %(line_id)s.") % {"line_id": line_id},
            details={"line_id": line_id},
        )
    return lines[line_id]


def _line_exceeded(line: PurchaseLine, money_left: Decimal) -> AppError:
    return AppError(
        "refund_exceeds_line",
        _("The refunds would exceed line %(line_id)s.") % {"line_id": line.line_id},
        details={
            "line_id": line.line_id,
            "quantity": line.quantity,
            "refunded_quantity": line.refunded_quantity,
            "amount": str(line.amount),
            "refunded_amount": str(line.refunded_amount),
            "refundable_amount": str(money_left),
        },
    )


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


def _replayed_refund(refund: Refund, *, amount, lines: Sequence[LineRefund]) -> Recorded:
    """The refund was reported before: the same report is answered as the first was."""
    named = [
        (line.line.line_id, line.quantity, line.amount if line.quantity is None else None)
        for line in refund.lines.select_related("line").order_by("id")
    ]
    requested = [(line.line_id, line.quantity, line.amount) for line in lines]
    if named != requested or (amount is not None and refund.amount != amount):
        raise AppError(
            "idempotency_conflict",
            _("This refund id was already reported with a different amount or lines."),
            details={"refund_id": refund.refund_id},
        )
    return Recorded(refund, False)


def _floor(value: Decimal) -> int:
    return int(value.to_integral_value(rounding=ROUND_FLOOR))
