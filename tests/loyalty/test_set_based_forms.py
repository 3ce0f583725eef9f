"""Each set-based form of the points core writes exactly what its per-member form
writes. Two members with the same history make the same movement, one through
`credit` or `debit`, the other through the SQL form; every row written for them
(the balance, each entry, lot and allocation, with its links and dates) is the same."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import connection

from loyalty.models import Allocation, LedgerEntry, Lot, Member
from loyalty.services.points import (
    DEBIT_CTES,
    Cause,
    credit,
    credit_by_phone_ctes,
    credit_many_statement,
    debit,
    expire_statement,
    member_lock,
)
from tests.invariants import assert_ledger_consistent

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 7, 1, 4, 0, tzinfo=UTC)
DUE = NOW - timedelta(days=1)
SOON = NOW + timedelta(days=30)
LATER = NOW + timedelta(days=300)
REFERENCE = "order-1"
JOB = "expire_points"

# A history with lots expiring in the past, soon, later and never, and one entry
# that took a lot half-way: (points, expiry) credits, then a debit.
HISTORY = [(120, LATER), (80, SOON), (50, None), (30, DUE), (40, DUE)]
HISTORY_DEBIT = 60


@pytest.fixture(autouse=True)
def _frozen_clock():
    with time_machine.travel(NOW, tick=False):
        yield


def member_with_history(phone: str, *, debt: int = 0) -> Member:
    member = Member.objects.create(phone=phone)
    for points, expires_at in HISTORY:
        credit_per_member(member, points, expires_at)
    debit_per_member(member, HISTORY_DEBIT, kind=LedgerEntry.Kind.REDEEM)
    if debt:
        balance = member_lock(member.pk).balance
        debit_per_member(member, balance + debt, kind=LedgerEntry.Kind.EARN_REVERSAL, debt=True)
    return member


def credit_per_member(member, points, expires_at, *, store=None):
    return credit(
        member=member_lock(member.pk),
        kind=LedgerEntry.Kind.EARN,
        points=points,
        expires_at=expires_at,
        cause=Cause(store=store, reference=REFERENCE),
    )


def debit_per_member(member, points, *, kind, debt=False, job="", reference=REFERENCE):
    return debit(
        member=member_lock(member.pk),
        kind=kind,
        points=points,
        cause=Cause(job=job, reference=reference),
        allow_debt=debt,
    )


def run(statement: str, parameters: dict) -> None:
    with connection.cursor() as cursor:
        cursor.execute(statement, parameters)


def written_for(member: Member) -> dict:
    """Every row of the member's, with ids replaced by their order among its rows."""
    entries = list(LedgerEntry.objects.filter(member=member).order_by("id"))
    lots = list(Lot.objects.filter(member=member).order_by("id"))
    entry_number = {entry.pk: number for number, entry in enumerate(entries)}
    lot_number = {lot.pk: number for number, lot in enumerate(lots)}
    allocations = Allocation.objects.filter(lot__member=member).order_by("id")
    return {
        "balance": Member.objects.get(pk=member.pk).balance,
        "entries": [
            (
                entry.kind,
                entry.points,
                entry.balance_after,
                entry.store_id,
                entry.staff_user_id,
                entry.job,
                entry.reference,
                entry.reason,
                entry.created_at,
            )
            for entry in entries
        ],
        "lots": [
            (
                entry_number[lot.entry_id],
                lot.points,
                lot.remaining,
                lot.expires_at,
                lot.created_at,
            )
            for lot in lots
        ],
        "allocations": [
            (entry_number[allocation.entry_id], lot_number[allocation.lot_id], allocation.points)
            for allocation in allocations
        ],
    }


@pytest.mark.parametrize("debt", [0, 25], ids=["with points", "in debt"])
@pytest.mark.parametrize("points", [1, 45, 500])
def test_the_earn_s_credit_writes_what_credit_writes(store, debt, points):
    by_function = member_with_history("+8613800000001", debt=debt)
    by_sql = member_with_history("+8613800000002", debt=debt)

    credit_per_member(by_function, points, LATER, store=store)
    run(
        f"WITH {credit_by_phone_ctes(when='TRUE')} SELECT FROM member",
        {
            "phone": by_sql.phone,
            "points": points,
            "kind": LedgerEntry.Kind.EARN,
            "store_id": store.pk,
            "reference": REFERENCE,
            "expires_at": LATER,
            "now": NOW,
        },
    )

    assert written_for(by_sql) == written_for(by_function)
    assert_ledger_consistent()


@pytest.mark.parametrize("points", [1, 20, 100, 170])
def test_the_hold_s_debit_writes_what_debit_writes(store, points):
    by_function = member_with_history("+8613800000001")
    by_sql = member_with_history("+8613800000002")

    debit(
        member=member_lock(by_function.pk),
        kind=LedgerEntry.Kind.REDEEM,
        points=points,
        cause=Cause(store=store, reference=REFERENCE),
    )
    member_lock(by_sql.pk)
    run(
        f"WITH {DEBIT_CTES} SELECT FROM member",
        {
            "member_id": by_sql.pk,
            "points": points,
            "kind": LedgerEntry.Kind.REDEEM,
            "store_id": store.pk,
            "reference": REFERENCE,
            "now": NOW,
        },
    )

    assert written_for(by_sql) == written_for(by_function)
    assert_ledger_consistent()


def test_the_expiry_statement_writes_what_a_debit_of_the_due_points_writes():
    by_function = member_with_history("+8613800000001")
    by_sql = [member_with_history(f"+861380000001{n}") for n in range(3)]
    due = sum(lot.remaining for lot in Lot.objects.filter(member=by_function, expires_at__lte=NOW))

    debit_per_member(by_function, due, kind=LedgerEntry.Kind.EXPIRE, job=JOB, reference="run")
    run(
        expire_statement(members="member_id = ANY(%(member_ids)s)"),
        {
            "member_ids": [member.pk for member in by_sql],
            "as_of": NOW,
            "kind": LedgerEntry.Kind.EXPIRE,
            "job": JOB,
            "reference": "run",
            "now": NOW,
        },
    )

    assert due > 0
    for member in by_sql:
        assert written_for(member) == written_for(by_function)
    assert_ledger_consistent()


@pytest.mark.parametrize("debt", [0, 25], ids=["with points", "in debt"])
def test_crediting_many_members_at_once_writes_what_crediting_each_writes(debt):
    by_function = member_with_history("+8613800000001", debt=debt)
    by_sql = [member_with_history(f"+861380000001{n}", debt=debt) for n in range(3)]
    credits = [(10, SOON), (30, None), (5, LATER)]

    for points, expires_at in credits:
        credit_per_member(by_function, points, expires_at)
    run(
        credit_many_statement(
            credits="SELECT member_id, seq, points, expires_at, %(reference)s AS reference"
            " FROM unnest(%(member_ids)s::bigint[]) AS member_id"
            " CROSS JOIN unnest(%(points)s::int[], %(expiries)s::timestamptz[])"
            " WITH ORDINALITY AS credit(points, expires_at, seq)"
        ),
        {
            "member_ids": [member.pk for member in by_sql],
            "points": [points for points, _ in credits],
            "expiries": [expires_at for _, expires_at in credits],
            "reference": REFERENCE,
            "kind": LedgerEntry.Kind.EARN,
            "store_id": None,
            "job": "",
            "now": NOW,
        },
    )

    for member in by_sql:
        assert written_for(member) == written_for(by_function)
    assert_ledger_consistent()
