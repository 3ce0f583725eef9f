"""Points as a discount at checkout: quote, hold, commit, cancel, and the release
of holds that ran out. Holds debit at once; a cancel or release puts the points
back into the very lots they came from.

A hold is the hot path of spending. It is two statements in one transaction:
`HOLD_READ` locks the member and reads the rules and any live redemption of the
order, and after the checks `HOLD_WRITE` debits the lots, soonest-expiring first,
and writes the entry, the allocations and the redemption, and the webhook events of
both. It writes exactly what `debit` would; the invariant tests hold it to that.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_FLOOR, Decimal

from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from core.errors import AppError
from loyalty.models import LedgerEntry, Member, Program, Redemption, Store
from webhooks.models import EventType
from webhooks.outbox import deliveries_kick, events_emit_ctes
from webhooks.payloads import (
    as_jsonb,
    entry_data_sql,
    entry_event_emit,
    redemption_data,
    redemption_event_emit,
    store_data,
)

from .points import DEBIT_CTES, Cause, fetch_named, member_lock, refuse_beyond_balance, restore

CENT = Decimal("0.01")
RELEASE_BATCH = 500


@dataclass(frozen=True)
class Quote:
    balance: int
    max_points: int
    max_discount: Decimal
    redeem_rate: int
    min_points: int


def discount_for_points(points: int, redeem_rate: int) -> Decimal:
    """floor_to_cent(points / rate): a discount never rounds up."""
    return (Decimal(points) / Decimal(redeem_rate)).quantize(CENT, rounding=ROUND_FLOOR)


def cap_points(order_total: Decimal, program: Program) -> int:
    """The most points whose value stays within the capped share of the bill."""
    cap_value = order_total * program.redeem_max_ratio * program.redeem_rate
    return int(cap_value.to_integral_value(rounding=ROUND_FLOOR))


def redeemable_points(*, order_total: Decimal, program: Program, balance: int | None) -> int:
    """The most points a bill may be paid with: within the member's balance (None: any),
    and the capped share of the bill; 0 when that is below the minimum per redemption."""
    most = cap_points(order_total, program)
    if balance is not None:
        most = min(max(balance, 0), most)
    return most if most >= program.redeem_min_points else 0


def redemption_quote(*, member: Member, order_total: Decimal) -> Quote:
    """The most a bill may be paid with points, and what that takes off it."""
    program = Program.current()
    most = redeemable_points(order_total=order_total, program=program, balance=member.balance)
    return Quote(
        balance=member.balance,
        max_points=most,
        max_discount=discount_for_points(most, program.redeem_rate),
        redeem_rate=program.redeem_rate,
        min_points=program.redeem_min_points,
    )


HOLD_READ = """
SELECT member.phone, member.balance, program.redeem_rate, program.redeem_max_ratio,
       program.redeem_min_points, program.hold_minutes,
       EXISTS (
           SELECT FROM loyalty_redemption
           WHERE store_id = %(store_id)s AND order_id = %(order_id)s
             AND status = ANY(%(live)s)
       ) AS order_is_taken
FROM loyalty_member AS member CROSS JOIN loyalty_program AS program
WHERE member.id = %(member_id)s AND program.id = %(program_id)s
FOR UPDATE OF member
"""

# What the hold's `points.redeemed` tells of its entry (webhooks/payloads.py).
_REDEEMED_ENTRY_DATA = entry_data_sql(
    entry_id="entry.id",
    kind="%(kind)s",
    points="-%(points)s",
    balance="balance",
    at="%(now)s",
    store="%(event_store)s",
    reference="%(reference)s",
)

# The core's DEBIT_CTES take the points from the lots; then the redemption is written,
# and the webhook events of both: the points' first, then the redemption's.
HOLD_WRITE = f"""
WITH {DEBIT_CTES},
redemption AS (
    INSERT INTO loyalty_redemption (
        store_id, order_id, member_id, order_total, points, discount, status, hold_expires_at,
        debit_entry_id, created_at
    )
    SELECT %(store_id)s, %(order_id)s, member.id, %(order_total)s, %(points)s, %(discount)s,
           %(status)s, %(hold_expires_at)s, entry.id, %(now)s
    FROM member CROSS JOIN entry
    RETURNING id, debit_entry_id
),
event_redemption AS (
    SELECT member.id AS member_id, member.balance,
           %(event_redemption)s::jsonb || jsonb_build_object('id', redemption.id) AS data
    FROM member CROSS JOIN redemption
),
event_rows AS (
    SELECT member_id, 1 AS position, '{EventType.POINTS_REDEEMED}' AS type,
           {_REDEEMED_ENTRY_DATA} || jsonb_build_object('redemption', event_redemption.data) AS data
    FROM event_redemption CROSS JOIN entry
    UNION ALL
    SELECT member_id, 2, '{EventType.REDEMPTION_HELD}',
           jsonb_build_object('redemption', data, 'balance', balance)
    FROM event_redemption
),
{events_emit_ctes(rows="event_rows")}
SELECT id, debit_entry_id, (SELECT balance FROM member) AS balance FROM redemption
"""


def redemption_hold(
    *, store: Store, member: Member, order_id: str, order_total: Decimal, points: int
) -> Redemption:
    """Debit the points for a discount on the order, held until committed."""
    with transaction.atomic(), connection.cursor() as cursor:
        phone, balance, program, order_is_taken = _read_for_hold(
            cursor, store=store, member=member, order_id=order_id
        )
        _refuse_outside_limits(program, order_total=order_total, points=points)
        if order_is_taken:
            raise _order_has_live_redemption(order_id)
        refuse_beyond_balance(balance, points)
        now = timezone.now()
        redemption = Redemption(
            store=store,
            order_id=order_id,
            member=Member(pk=member.pk, phone=phone),
            order_total=order_total,
            points=points,
            discount=discount_for_points(points, program.redeem_rate),
            hold_expires_at=now + timedelta(minutes=program.hold_minutes),
            created_at=now,
        )
        try:
            cursor.execute(HOLD_WRITE, _write_parameters(redemption))
        except IntegrityError:
            # Another member's hold on the same order won a race; leaving the block rolls
            # this one back whole, so no savepoint is needed.
            raise _order_has_live_redemption(order_id) from None
        written = fetch_named(cursor)
        if written is None:
            raise RuntimeError(f"member {member.pk}: lots hold fewer points than the balance")
        transaction.on_commit(deliveries_kick)
        redemption.pk = written["id"]
        redemption.debit_entry_id = written["debit_entry_id"]
        redemption.member.balance = written["balance"]
        return redemption


def _read_for_hold(cursor, *, store: Store, member: Member, order_id: str):
    """Lock the member; its phone and balance, the rules, and whether the order is taken."""
    parameters = {
        "store_id": store.pk,
        "member_id": member.pk,
        "order_id": order_id,
        "live": list(Redemption.LIVE),
        "program_id": Program.SINGLETON_ID,
    }
    cursor.execute(HOLD_READ, parameters)
    row = fetch_named(cursor)
    if row is None:
        # The rules were never saved: their defaults are written once, then read.
        Program.current()
        cursor.execute(HOLD_READ, parameters)
        row = fetch_named(cursor)
    if row is None:
        raise Member.DoesNotExist(f"member {member.pk} does not exist")
    program = Program(
        redeem_rate=row["redeem_rate"],
        redeem_max_ratio=row["redeem_max_ratio"],
        redeem_min_points=row["redeem_min_points"],
        hold_minutes=row["hold_minutes"],
    )
    return row["phone"], row["balance"], program, row["order_is_taken"]


def _write_parameters(redemption: Redemption) -> dict:
    return {
        "kind": LedgerEntry.Kind.REDEEM,
        "store_id": redemption.store.pk,
        "member_id": redemption.member.pk,
        "order_id": redemption.order_id,
        "reference": redemption.order_id,
        "order_total": redemption.order_total,
        "points": redemption.points,
        "discount": redemption.discount,
        "hold_expires_at": redemption.hold_expires_at,
        "status": Redemption.Status.HELD,
        "now": redemption.created_at,
        "event_store": as_jsonb(store_data(redemption.store)),
        "event_redemption": as_jsonb(redemption_data(redemption)),
    }


def redemption_commit(*, store: Store, redemption_id: int) -> Redemption:
    """The order is paid: the held points are spent for good (a cancel may still return them).
    A commit sent again answers the committed redemption: a till that lost the answer retries."""
    with transaction.atomic():
        redemption = _lock_store_redemption(store=store, redemption_id=redemption_id)
        if redemption.status == Redemption.Status.COMMITTED:
            return redemption
        _require_status(redemption, Redemption.Status.HELD)
        redemption.status = Redemption.Status.COMMITTED
        redemption.committed_at = timezone.now()
        redemption.save(update_fields=["status", "committed_at"])
        redemption_event_emit(
            redemption,
            type=EventType.REDEMPTION_COMMITTED,
            balance=redemption.member.balance,
        )
        return redemption


def redemption_cancel(*, store: Store, redemption_id: int) -> Redemption:
    """The order is cancelled: held or committed points go back into their lots.
    A cancel sent again answers the cancelled redemption and moves nothing."""
    with transaction.atomic():
        redemption = _lock_store_redemption(store=store, redemption_id=redemption_id)
        if redemption.status == Redemption.Status.CANCELLED:
            return redemption
        _require_status(redemption, *Redemption.LIVE)
        _return_points(redemption, Redemption.Status.CANCELLED, Cause(store=store))
        return redemption


def redemptions_release_expired(*, as_of: datetime) -> int:
    """Release holds not committed in time; each in its own short transaction.
    Safe to run twice or in parallel: a hold is released only while still held."""
    released = 0
    due = Redemption.objects.filter(status=Redemption.Status.HELD, hold_expires_at__lte=as_of)
    for redemption_id, member_id in due.values_list("pk", "member_id")[:RELEASE_BATCH]:
        with transaction.atomic():
            member = member_lock(member_id)
            redemption = Redemption.objects.select_for_update().get(pk=redemption_id)
            redemption.member = member
            if redemption.status == Redemption.Status.HELD and redemption.hold_expires_at <= as_of:
                _return_points(redemption, Redemption.Status.RELEASED, Cause(job="release_holds"))
                released += 1
    return released


_CLOSED_EVENT = {
    Redemption.Status.CANCELLED: EventType.REDEMPTION_CANCELLED,
    Redemption.Status.RELEASED: EventType.REDEMPTION_RELEASED,
}


def _return_points(redemption: Redemption, status: str, cause: Cause) -> None:
    """Restore the held points; the caller holds the member's lock (redemption.member).
    Writes the points' event, then the redemption's."""
    redemption.release_entry = restore(
        member=redemption.member,
        debit_entry=redemption.debit_entry,
        kind=LedgerEntry.Kind.REDEEM_RELEASE,
        cause=Cause(
            store=cause.store, job=cause.job, reference=redemption.order_id, reason=str(status)
        ),
    )
    redemption.status = status
    redemption.closed_at = timezone.now()
    redemption.save(update_fields=["status", "release_entry", "closed_at"])
    entry_event_emit(redemption.release_entry, redemption=redemption_data(redemption))
    redemption_event_emit(
        redemption, type=_CLOSED_EVENT[status], balance=redemption.release_entry.balance_after
    )


def _lock_store_redemption(*, store: Store, redemption_id: int) -> Redemption:
    """Lock the member, then the redemption; a store reaches only its own."""
    found = Redemption.objects.filter(pk=redemption_id, store=store).values("member_id").first()
    if found is None:
        raise AppError("not_found", _("This store has no redemption with this id."))
    member = member_lock(found["member_id"])
    redemption = Redemption.objects.select_for_update().get(pk=redemption_id)
    redemption.member = member
    return redemption


def _require_status(redemption: Redemption, *allowed: str) -> None:
    if redemption.status not in allowed:
        raise AppError(
            "invalid_state",
            _("The redemption is %(status)s; that cannot be done now.")
            % {"status": redemption.get_status_display()},
            details={"status": redemption.status},
        )


def _refuse_outside_limits(program: Program, *, order_total: Decimal, points: int) -> None:
    if points < program.redeem_min_points:
        raise AppError(
            "below_minimum",
            _("At least %(min)d points must be used at once.") % {"min": program.redeem_min_points},
            details={"min_points": program.redeem_min_points, "requested": points},
        )
    cap = cap_points(order_total, program)
    if points > cap:
        raise AppError(
            "redeem_cap_exceeded",
            _("Points may pay at most %(ratio)s of this bill: %(cap)d points.")
            % {"ratio": f"{program.redeem_max_ratio:.0%}", "cap": cap},
            details={"max_points": cap, "requested": points},
        )


def _order_has_live_redemption(order_id: str) -> AppError:
    return AppError(
        "invalid_state",
        _("This order already has points held or spent on it; cancel that first."),
        details={"order_id": order_id},
    )
