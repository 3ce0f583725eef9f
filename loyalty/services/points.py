"""The one core that moves points: the only code that writes balances, ledger
entries, lots and allocations, in Python or as SQL. Every earn, refund, hold,
release, reward, adjustment, cancel and expiry run is a caller of it.

Each movement writes the ledger entry, the lots and the cached balance together,
so the invariants of docs/invariants.md live here. Callers open the transaction
and hold the member's row lock (`member_lock`) before calling; lots are locked
after the member, never before.

A movement comes in two forms. `credit`, `debit` and `restore` move one member's
points through the ORM. The set-based forms move them in SQL, for the paths
where a round trip per row would cost too much: `credit_by_phone_ctes` and
`DEBIT_CTES` compose into the earn's one statement (`purchases.EARN_STATEMENT`)
and the hold's (`redemptions.HOLD_WRITE`), `expire_statement` empties every due
lot of many members at once for the expiry job, and `credit_many_statement`
credits many members at once. Each writes exactly what its
per-member form would; tests/loyalty/test_set_based_forms.py compares every row.

Each entry has its `points.*` event (webhooks/payloads.py), written by the caller of
the per-member forms, who knows what moved the points, and by the whole statements
(`expire_statement`, `credit_many_statement`) themselves.
"""

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Case, F, IntegerField, Value, When
from django.utils.translation import gettext_lazy as _

from core.errors import AppError
from loyalty.models import Allocation, LedgerEntry, Lot, Member
from webhooks.models import EventType
from webhooks.outbox import events_emit_ctes
from webhooks.payloads import entry_data_sql, event_type_sql, store_data_sql

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


# --- Set-based forms. Each column list of the tables moved is written here once.

ENTRY_INSERT = """
INSERT INTO loyalty_ledgerentry (
    member_id, kind, points, balance_after, store_id, job, reference, reason, created_at
)"""
LOT_INSERT = """
INSERT INTO loyalty_lot (member_id, entry_id, points, remaining, expires_at, created_at)"""
ALLOCATION_INSERT = """
INSERT INTO loyalty_allocation (entry_id, lot_id, points)"""


def credit_by_phone_ctes(*, when: str) -> str:
    """`credit` as CTEs of a WITH clause: the member of %(phone)s, created if new, is
    locked and gains %(points)s; then the entry and the lot expiring at %(expires_at)s.
    Nothing is written unless the SQL condition `when` holds, which may ask the
    caller's CTEs before these. The statement passes %(kind)s, %(store_id)s,
    %(reference)s and %(now)s, and may read `member` (id, balance, created_at, and
    `inserted`: whether the member is new) and `entry` (id, member_id, balance_after).
    A credit of 0 points locks or creates the member and writes nothing else."""
    return f"""
member AS (
    INSERT INTO loyalty_member (phone, balance, created_at)
    SELECT %(phone)s, %(points)s, %(now)s WHERE {when}
    ON CONFLICT (phone) DO UPDATE SET balance = loyalty_member.balance + EXCLUDED.balance
    RETURNING id, balance, created_at, xmax = 0 AS inserted
),
entry AS (
    {ENTRY_INSERT}
    SELECT id, %(kind)s, %(points)s, balance, %(store_id)s, '', %(reference)s, '', %(now)s
    FROM member WHERE %(points)s > 0
    RETURNING id, member_id, balance_after
),
lot AS (
    -- A debt from a refund is paid first: only what is left becomes a lot.
    {LOT_INSERT}
    SELECT member_id, id, LEAST(balance_after, %(points)s), LEAST(balance_after, %(points)s),
           %(expires_at)s, %(now)s
    FROM entry WHERE balance_after > 0
)"""


def credit_many_statement(*, credits: str) -> str:
    """`credit` for many members at once, in one statement: the SQL query `credits`
    gives rows (member_id, seq, points, expires_at, reference), points above 0, and
    each becomes a %(kind)s entry by %(store_id)s and %(job)s at %(now)s, in `seq`
    order per member, with its lot and its event; the members are locked and their
    balances raised. The caller runs `transaction.on_commit(deliveries_kick)`. For
    loading many members' points at once, as the tests and benchmarks that need a
    million lots do."""
    credited = entry_data_sql(
        entry_id="id",
        kind="%(kind)s",
        points="points",
        balance="balance_after",
        at="%(now)s",
        store=store_data_sql("%(store_id)s"),
        reference="reference",
    )
    return f"""
WITH credits AS ({credits}),
locked AS (
    SELECT id, balance FROM loyalty_member
    WHERE id IN (SELECT member_id FROM credits) ORDER BY id FOR UPDATE
),
running AS (
    SELECT credits.*, locked.balance + SUM(credits.points) OVER (
        PARTITION BY credits.member_id ORDER BY credits.seq
    ) AS balance_after
    FROM credits JOIN locked ON locked.id = credits.member_id
),
entries AS (
    {ENTRY_INSERT}
    SELECT member_id, %(kind)s, points, balance_after, %(store_id)s, %(job)s, reference, '',
           %(now)s
    FROM running ORDER BY member_id, seq
    RETURNING id, member_id, points, balance_after, reference
),
event_rows AS (
    -- A member's balance after each credit rises with it: it orders their events.
    SELECT member_id, balance_after AS position, {event_type_sql("%(kind)s")} AS type,
           {credited} AS data
    FROM entries
),
{events_emit_ctes(rows="event_rows")},
lots AS (
    -- As in `credit`: a debt is paid first, and only what is left becomes a lot. A
    -- member's balances after each credit differ, so they find each credit's expiry.
    {LOT_INSERT}
    SELECT entries.member_id, entries.id, LEAST(entries.balance_after, entries.points),
           LEAST(entries.balance_after, entries.points), running.expires_at, %(now)s
    FROM entries JOIN running USING (member_id, balance_after)
    WHERE entries.balance_after > 0
)
UPDATE loyalty_member AS member SET balance = credited.balance
FROM (SELECT member_id, MAX(balance_after) AS balance FROM running GROUP BY member_id) AS credited
WHERE member.id = credited.member_id"""


# `debit` as CTEs of a WITH clause, for the member %(member_id)s the caller has locked.
# The open lots in debit order with a running sum: each lot gives what the points still
# need after the lots before it. Nothing is written unless they cover the points; then
# `member` is the member with its new balance and `entry` the debit's entry. The
# statement passes %(points)s, %(kind)s, %(store_id)s, %(reference)s and %(now)s.
DEBIT_CTES = f"""
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
    {ENTRY_INSERT}
    SELECT id, %(kind)s, -%(points)s, balance, %(store_id)s, '', %(reference)s, '', %(now)s
    FROM member
    RETURNING id
),
emptied AS (
    UPDATE loyalty_lot AS lot SET remaining = lot.remaining - taken.points
    FROM taken WHERE lot.id = taken.id AND EXISTS (SELECT FROM covered)
),
allocated AS (
    {ALLOCATION_INSERT}
    SELECT entry.id, taken.id, taken.points FROM entry CROSS JOIN taken
)"""


def expire_statement(*, members: str) -> str:
    """Expire, in one statement, every lot with points left and an expiry at or before
    %(as_of)s of the members the SQL condition `members` (on `member_id`) selects: the
    lots are emptied, and each member gets one %(kind)s entry by %(job)s with
    %(reference)s and %(now)s, an allocation per emptied lot, and the new balance. What
    a `debit` of all the due points would write, since they expire soonest, and each
    member's `points.expired` event. The caller locks the members first, and runs
    `transaction.on_commit(deliveries_kick)`. Returns one row: `lots`, `members` and
    `points` expired. Every figure comes from the rows as the statement changes them,
    so nothing is read and written back in separate steps."""
    expired = entry_data_sql(
        entry_id="id",
        kind="%(kind)s",
        points="points",
        balance="balance_after",
        at="%(now)s",
        store="NULL",
        reference="%(reference)s",
    )
    return f"""
WITH due AS (
    SELECT id, member_id, remaining FROM loyalty_lot
    WHERE ({members}) AND remaining > 0 AND expires_at <= %(as_of)s
),
emptied AS (
    UPDATE loyalty_lot AS lot SET remaining = 0
    FROM due WHERE lot.id = due.id
    RETURNING lot.id, lot.member_id, due.remaining AS points
),
per_member AS (
    SELECT member_id, SUM(points) AS points, COUNT(*) AS lots
    FROM emptied GROUP BY member_id
),
charged AS (
    UPDATE loyalty_member AS member SET balance = member.balance - per_member.points
    FROM per_member WHERE member.id = per_member.member_id
    RETURNING member.id, member.balance, per_member.points
),
entries AS (
    {ENTRY_INSERT}
    SELECT id, %(kind)s, -points, balance, NULL, %(job)s, %(reference)s, '', %(now)s
    FROM charged
    RETURNING id, member_id, points, balance_after
),
event_rows AS (
    SELECT member_id, 1 AS position, '{EventType.POINTS_EXPIRED}' AS type,
           {expired} AS data
    FROM entries
),
{events_emit_ctes(rows="event_rows")},
allocations AS (
    {ALLOCATION_INSERT}
    SELECT entries.id, emptied.id, emptied.points
    FROM emptied JOIN entries USING (member_id)
)
SELECT COALESCE(SUM(lots), 0)::bigint AS lots, COUNT(*) AS members,
       COALESCE(SUM(points), 0)::bigint AS points
FROM per_member"""


def fetch_named(cursor) -> dict | None:
    """The next row of a statement's result as {column name: value}; None after the last."""
    row = cursor.fetchone()
    if row is None:
        return None
    return dict(zip((column.name for column in cursor.description), row, strict=True))


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
