"""The one core that moves points. Every refund, release, reward, adjustment and
cancel is a thin caller of `credit`, `debit` or `restore`.

Each function writes the ledger entry, the lots and the cached balance
together, so the invariants of docs/invariants.md live here. Callers open the
transaction and hold the member's row lock (`member_lock`) before calling; lots
are locked after the member, never before.

The two hottest movements make their whole write in one statement on
PostgreSQL, for throughput: the earn (`purchases.EARN_STATEMENT`) and the hold
(`redemptions.HOLD_WRITE`). Their writes of points are this core's too, in
set-based form: `CREDIT_CTES` and `DEBIT_CTES` write what `credit` and `debit`
write, in the same lock order, and the invariant tests hold them to it. On SQLite
those paths call the functions. The expiry job has set-based SQL of its own
(`expiry.py`): it empties every due lot of many members at once, a movement no
function here makes.
"""

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Case, F, IntegerField, Value, When
from django.utils.translation import gettext_lazy as _

from config.errors import AppError
from loyalty.models import Allocation, LedgerEntry, Lot, Member

# Lots are read in batches while a debit walks them, so one debit never loads a
# member's whole history yet rarely needs a second round trip.
LOT_BATCH = 50


@dataclass(frozen=True)
class Cause:
    """Who or what moved the points, and why: copied onto the ledger entry."""

    store: object = None
    staff_user: object = None
    job: str = ""
    reference: str = ""
    reason: str = ""


def member_lock(member_id: int) -> Member:
    """Lock the member row; the first lock of every path that moves points."""
    return Member.objects.select_for_update().get(pk=member_id)


def credit(
    *, member: Member, kind: str, points: int, expires_at: datetime | None, cause: Cause
) -> LedgerEntry:
    """Add points. A negative balance (a debt from a refund) is paid off first;
    what is left becomes a new lot with the given expiry."""
    _require_positive(points)
    entry = _append_entry(member=member, kind=kind, points=points, cause=cause)
    lot_points = _clamp(entry.balance_after, 0, points)
    if lot_points:
        Lot.objects.create(
            member=member,
            entry=entry,
            points=lot_points,
            remaining=lot_points,
            expires_at=expires_at,
            created_at=entry.created_at,
        )
    return entry


def debit(
    *,
    member: Member,
    kind: str,
    points: int,
    cause: Cause,
    allow_debt: bool = False,
    lot_first: Lot | None = None,
) -> LedgerEntry:
    """Take points from the member's lots, soonest-expiring first, then oldest.

    Only a refund reversal passes `allow_debt`: the customer may have spent the
    points already, and the balance goes below zero. `lot_first` is drained
    before the others, so a refund takes back the very points its purchase earned.
    """
    _require_positive(points)
    if not allow_debt:
        refuse_beyond_balance(member.balance, points)
    from_lots = _clamp(member.balance, 0, points)
    entry = _append_entry(member=member, kind=kind, points=-points, cause=cause)
    _take_from_lots(member=member, entry=entry, points=from_lots, lot_first=lot_first)
    return entry


def restore(*, member: Member, debit_entry: LedgerEntry, kind: str, cause: Cause) -> LedgerEntry:
    """Give back what a debit took, into the very lots it came from, with their
    original expiry (a lot that has expired meanwhile expires again at the next run).
    A debt is paid off first, as with any credit."""
    points = -debit_entry.points
    _require_positive(points)
    entry = _append_entry(member=member, kind=kind, points=points, cause=cause)
    _return_to_lots(
        debit_entry=debit_entry, entry=entry, points=_clamp(entry.balance_after, 0, points)
    )
    return entry


# --- Set-based forms, for a movement made in one statement. Each is CTEs of a WITH
# clause; the caller's statement passes %(points)s, %(kind)s, %(store_id)s,
# %(reference)s and %(now)s, and reads the CTEs `member` and `entry` afterwards.

# `credit`, after the caller's CTE `member` has locked (or created) the member and added
# the points to its balance, RETURNING id, balance. With %(expires_at)s for the lot.
CREDIT_CTES = """
entry AS (
    INSERT INTO loyalty_ledgerentry (
        member_id, kind, points, balance_after, store_id, job, reference, reason, created_at
    )
    SELECT id, %(kind)s, %(points)s, balance, %(store_id)s, '', %(reference)s, '', %(now)s
    FROM member WHERE %(points)s > 0
    RETURNING id, member_id, balance_after
),
lot AS (
    -- A debt from a refund is paid first: only what is left becomes a lot.
    INSERT INTO loyalty_lot (member_id, entry_id, points, remaining, expires_at, created_at)
    SELECT member_id, id, LEAST(balance_after, %(points)s), LEAST(balance_after, %(points)s),
           %(expires_at)s, %(now)s
    FROM entry WHERE balance_after > 0
)
"""

# `debit`, for the member %(member_id)s the caller has locked already. The open lots
# in debit order with a running sum: each lot gives what the points still need after
# the lots before it. Nothing is written unless they cover the points; then `member`
# is the member with its new balance and `entry` the debit's entry.
DEBIT_CTES = """
open_lots AS (
    SELECT id, remaining,
           SUM(remaining) OVER (ORDER BY expires_at ASC NULLS LAST, id) - remaining AS before
    FROM (
        SELECT id, remaining, expires_at FROM loyalty_lot
        WHERE member_id = %(member_id)s AND remaining > 0
        ORDER BY expires_at ASC NULLS LAST, id
        FOR UPDATE
    ) AS locked
),
taken AS (
    SELECT id, LEAST(remaining, %(points)s - before) AS points
    FROM open_lots WHERE before < %(points)s
),
covered AS (
    SELECT FROM taken HAVING SUM(points) = %(points)s
),
member AS (
    UPDATE loyalty_member SET balance = balance - %(points)s
    WHERE id = %(member_id)s AND EXISTS (SELECT FROM covered)
    RETURNING id, balance
),
entry AS (
    INSERT INTO loyalty_ledgerentry (
        member_id, kind, points, balance_after, store_id, job, reference, reason, created_at
    )
    SELECT id, %(kind)s, -%(points)s, balance, %(store_id)s, '', %(reference)s, '', %(now)s
    FROM member
    RETURNING id
),
emptied AS (
    UPDATE loyalty_lot AS lot SET remaining = lot.remaining - taken.points
    FROM taken WHERE lot.id = taken.id AND EXISTS (SELECT FROM covered)
),
allocated AS (
    INSERT INTO loyalty_allocation (entry_id, lot_id, points)
    SELECT entry.id, taken.id, taken.points FROM entry CROSS JOIN taken
)
"""


def refuse_beyond_balance(balance: int, points: int) -> None:
    """Only a refund may take a balance below zero; every other debit stops here."""
    _require_positive(points)
    if points > balance:
        raise AppError(
            "insufficient_points",
            _("The member does not have enough points."),
            details={"balance": balance, "requested": points},
        )


def _append_entry(*, member: Member, kind: str, points: int, cause: Cause) -> LedgerEntry:
    member.balance += points
    member.save(update_fields=["balance"])
    return LedgerEntry.objects.create(
        member=member,
        kind=kind,
        points=points,
        balance_after=member.balance,
        store=cause.store,
        staff_user=cause.staff_user,
        job=cause.job,
        reference=cause.reference,
        reason=cause.reason,
    )


def _take_from_lots(*, member: Member, entry: LedgerEntry, points: int, lot_first: Lot | None):
    taken_lots, allocations = [], []
    for lot in _open_lots_in_debit_order(member, lot_first):
        if points == 0:
            break
        take = min(points, lot.remaining)
        lot.remaining -= take
        points -= take
        taken_lots.append(lot)
        allocations.append(Allocation(entry=entry, lot=lot, points=take))
    if points:
        raise RuntimeError(f"member {member.pk}: lots hold fewer points than the balance")
    Lot.objects.bulk_update(taken_lots, ["remaining"])
    Allocation.objects.bulk_create(allocations)


def _open_lots_in_debit_order(member: Member, lot_first: Lot | None):
    order = [F("expires_at").asc(nulls_last=True), "id"]
    lots = Lot.objects.select_for_update().filter(member=member, remaining__gt=0)
    if lot_first is not None:
        first = Case(
            When(pk=lot_first.pk, then=Value(0)), default=Value(1), output_field=IntegerField()
        )
        order.insert(0, first)
    offset = 0
    while batch := list(lots.order_by(*order)[offset : offset + LOT_BATCH]):
        yield from batch
        offset += LOT_BATCH


def _return_to_lots(*, debit_entry: LedgerEntry, entry: LedgerEntry, points: int):
    taken = {a.lot_id: a.points for a in debit_entry.allocations.all()}
    lots = Lot.objects.select_for_update().filter(pk__in=taken).order_by("pk")
    returned_lots, allocations = [], []
    for lot in lots:
        if points == 0:
            break
        give = min(points, taken[lot.pk])
        lot.remaining += give
        points -= give
        returned_lots.append(lot)
        allocations.append(Allocation(entry=entry, lot=lot, points=give))
    Lot.objects.bulk_update(returned_lots, ["remaining"])
    Allocation.objects.bulk_create(allocations)


def _clamp(value: int, low: int, high: int) -> int:
    return max(low, min(value, high))


def _require_positive(points: int) -> None:
    if not isinstance(points, int) or points <= 0:
        raise ValueError(f"points must be a positive whole number, got {points!r}")
