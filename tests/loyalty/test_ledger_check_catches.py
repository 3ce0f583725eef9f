"""Every invariant of docs/invariants.md, broken in the database on purpose, is named by
`manage.py check_ledger` together with the member whose ledger breaks it, and the
command exits 1.

A member's history is made through the services (two purchases, a hold, a partial
refund), beside a bystander's purchase. Each case then damages the member's ledger as
only a bug, a hand-written statement or a bad restore could: the ledger refuses UPDATE
and DELETE by trigger and the tables carry check constraints, so a case turns off what
stands in its way, inside the test's transaction. Each case names every invariant its
damage breaks, so no check can go quiet unnoticed, and none may name the bystander."""

import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from io import StringIO

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from core.postgresql.operations import TRIGGERS_OFF, TRIGGERS_ON
from loyalty.models import (
    Allocation,
    EventRule,
    LedgerEntry,
    Lot,
    Member,
    MemberEvent,
    Purchase,
    Store,
)
from loyalty.services.events import EventReport, event_record
from loyalty.services.points import Cause, credit, debit, member_lock
from loyalty.services.purchases import purchase_record
from loyalty.services.redemptions import redemption_hold
from loyalty.services.refunds import refund_record

pytestmark = pytest.mark.django_db

PHONE = "+8613800138000"
BYSTANDER = "+8613900139000"
DOCS = settings.BASE_DIR / "docs/invariants.md"
BREACH = re.compile(r"^member (\d+): invariant (\d+): ", re.MULTILINE)


@dataclass(frozen=True)
class History:
    store: Store
    member: Member
    bystander: Member

    def earn_entry(self, order_id: str) -> LedgerEntry:
        return Purchase.objects.get(store=self.store, order_id=order_id).earn_entry

    def lot_of(self, order_id: str) -> Lot:
        return Lot.objects.get(entry=self.earn_entry(order_id))

    def entry(self, kind: str) -> LedgerEntry:
        return LedgerEntry.objects.get(member=self.member, kind=kind)


@pytest.fixture
def history(store) -> History:
    """P1 earns 100 (lot A), P2 earns 200 (lot B); a hold of 150 takes all of A and 50 of
    B; refund R1 of P2 takes 50 more of B. The member keeps 100, all in lot B."""
    purchase_record(store=store, phone=PHONE, order_id="P1", amount=Decimal("100.00"))
    purchase_record(store=store, phone=PHONE, order_id="P2", amount=Decimal("200.00"))
    member = Member.objects.get(phone=PHONE)
    redemption_hold(
        store=store, member=member, order_id="H1", order_total=Decimal("1000.00"), points=150
    )
    refund_record(store=store, order_id="P2", refund_id="R1", amount=Decimal("50.00"))
    purchase_record(store=store, phone=BYSTANDER, order_id="Q1", amount=Decimal("80.00"))
    member.refresh_from_db()
    assert member.balance == 100
    return History(store, member, Member.objects.get(phone=BYSTANDER))


def check_ledger() -> tuple[int, str]:
    """The command as an operator runs it: its exit code and what it printed."""
    out = StringIO()
    try:
        call_command("check_ledger", stdout=out, stderr=StringIO())
    except CommandError as failure:
        return failure.returncode, out.getvalue() + str(failure)
    return 0, out.getvalue()


def invariants_named(output: str) -> dict[int, set[str]]:
    named = {}
    for member_id, invariant in BREACH.findall(output):
        named.setdefault(int(member_id), set()).add(invariant)
    return named


def sql(statement: str, params=()) -> None:
    with connection.cursor() as cursor:
        cursor.execute(statement, params)


def drop_check(table: str, constraint: str) -> None:
    """Gone until the test's transaction rolls back. PostgreSQL alters no table with
    foreign key checks pending, and Django defers those to the commit: they run now."""
    sql("SET CONSTRAINTS ALL IMMEDIATE")
    sql(f"ALTER TABLE {table} DROP CONSTRAINT {constraint}")


# --- the damage, one function a way ----------------------------------------------------


def drift_the_cached_balance(h: History) -> None:
    Member.objects.filter(pk=h.member.pk).update(balance=h.member.balance + 7)


def take_points_out_of_a_lot(h: History) -> None:
    sql("UPDATE loyalty_lot SET remaining = remaining - 10 WHERE id = %s", [h.lot_of("P2").pk])


def fill_a_lot_beyond_its_points(h: History) -> None:
    drop_check("loyalty_lot", "lot_remaining_within_points")
    sql("UPDATE loyalty_lot SET remaining = points + 5 WHERE id = %s", [h.lot_of("P2").pk])


def empty_a_lot_below_nothing(h: History) -> None:
    drop_check("loyalty_lot", "lot_remaining_within_points")
    sql("UPDATE loyalty_lot SET remaining = -5 WHERE id = %s", [h.lot_of("P1").pk])


def inflate_an_allocation(h: History) -> None:
    Allocation.objects.filter(entry=h.entry("redeem"), lot=h.lot_of("P1")).update(points=120)


def lose_a_debits_allocation(h: History) -> None:
    Allocation.objects.filter(entry=h.entry("earn_reversal")).delete()


def rewrite_a_balance_after(h: History) -> None:
    sql(TRIGGERS_OFF)
    sql(
        "UPDATE loyalty_ledgerentry SET balance_after = balance_after + 1 WHERE id = %s",
        [h.earn_entry("P1").pk],
    )
    sql(TRIGGERS_ON)


def spend_into_debt_by(kind: str) -> Callable[[History], None]:
    """Through the points core itself, as a bug that let this debit pass a debt would:
    every lot and allocation is right, only the balance is below zero."""

    def spend_into_debt(h: History) -> None:
        drop_check("loyalty_ledgerentry", "entry_only_reversal_goes_negative")
        debit(
            member=member_lock(h.member.pk),
            kind=kind,
            points=150,
            cause=Cause(reference="damage"),
            allow_debt=True,
        )

    spend_into_debt.__name__ = f"spend_into_debt_by_{kind}"
    return spend_into_debt


def fill_a_lot_before_paying_a_debt(h: History) -> None:
    """A refund leaves a debt of 50; a credit of 80 must pay it and keep 30 in its lot."""
    debit(
        member=member_lock(h.member.pk),
        kind=LedgerEntry.Kind.EARN_REVERSAL,
        points=150,
        cause=Cause(store=h.store, reference="P1/R2"),
        allow_debt=True,
    )
    paid = credit(
        member=member_lock(h.member.pk),
        kind=LedgerEntry.Kind.EARN,
        points=80,
        expires_at=None,
        cause=Cause(store=h.store, reference="P3"),
    )
    Lot.objects.filter(entry=paid).update(points=80, remaining=80)


def earn_twice_for_one_order(h: History) -> None:
    """What a replay of P1 that missed the stored purchase would write."""
    credit(
        member=member_lock(h.member.pk),
        kind=LedgerEntry.Kind.EARN,
        points=100,
        expires_at=None,
        cause=Cause(store=h.store, reference="P1"),
    )


def reverse_twice_for_one_refund(h: History) -> None:
    debit(
        member=member_lock(h.member.pk),
        kind=LedgerEntry.Kind.EARN_REVERSAL,
        points=50,
        cause=Cause(store=h.store, reference="P2/R1"),
        allow_debt=True,
    )


def review_paid(h: History) -> MemberEvent:
    """A review the store reported, paid 20 points by its rule: right, until damaged."""
    EventRule.objects.create(
        event_type="review_written", name_en="Review", name_zh="评价", points=20
    )
    report = EventReport(
        event_type="review_written", external_id="R-1", occurred_at=timezone.now(), store=h.store
    )
    event, _new = event_record(member_id=h.member.pk, report=report)
    assert event.points == 20
    return event


def credit_an_event_that_was_never_recorded(h: History) -> None:
    """What a bug that paid an event and lost its record would leave."""
    credit(
        member=member_lock(h.member.pk),
        kind=LedgerEntry.Kind.EVENT,
        points=20,
        expires_at=None,
        cause=Cause(store=h.store, reference="R-1"),
    )


def record_other_points_than_the_event_paid(h: History) -> None:
    MemberEvent.objects.filter(pk=review_paid(h).pk).update(points=25)


def record_a_paid_event_without_its_entry(h: History) -> None:
    drop_check("loyalty_memberevent", "member_event_paid_has_entry")
    MemberEvent.objects.filter(pk=review_paid(h).pk).update(entry=None)


# Each way of damage, the invariant it is meant to break, and what else it breaks with it.
CASES = [
    # 1: the balance is the sum of the entries (and so the lots no longer match it, 2).
    (drift_the_cached_balance, "1", {"2"}),
    # 2: lots hold exactly the positive balance (the lot's allocations disagree too, 4).
    (take_points_out_of_a_lot, "2", {"4"}),
    # 3: 0 <= remaining <= points.
    (fill_a_lot_beyond_its_points, "3", {"2", "4"}),
    (empty_a_lot_below_nothing, "3", {"2", "4"}),
    # 4: every debit is accounted for lot by lot.
    (inflate_an_allocation, "4", set()),
    (lose_a_debits_allocation, "4", set()),
    # 5: balance_after is the running sum.
    (rewrite_a_balance_after, "5", set()),
    # 6: nothing but a refund makes a balance negative...
    (spend_into_debt_by(LedgerEntry.Kind.REDEEM), "6", set()),
    (spend_into_debt_by(LedgerEntry.Kind.REWARD), "6", set()),
    (spend_into_debt_by(LedgerEntry.Kind.ADJUST), "6", set()),
    (spend_into_debt_by(LedgerEntry.Kind.EXPIRE), "6", set()),
    # ...and the next credits pay the debt before a lot gets points: the lots then hold
    # more than the balance (2), and the credit filled its lot with what the debt was owed (4).
    (fill_a_lot_before_paying_a_debt, "2", {"4"}),
    # 7: a retried request never moves points twice.
    (earn_twice_for_one_order, "7", set()),
    (reverse_twice_for_one_refund, "7", set()),
    # 8: every event entry is one event's points.
    (credit_an_event_that_was_never_recorded, "8", set()),
    (record_other_points_than_the_event_paid, "8", set()),
    (record_a_paid_event_without_its_entry, "8", set()),
]


def test_the_history_before_any_damage_passes(history):
    exit_code, output = check_ledger()

    assert exit_code == 0, output
    assert invariants_named(output) == {}
    assert "2 members checked, 0 breaches" in output


@pytest.mark.parametrize(
    ("damage", "invariant", "also_broken"),
    CASES,
    ids=[f"{invariant}-{damage.__name__}" for damage, invariant, _ in CASES],
)
def test_check_ledger_names_the_broken_invariant_and_the_member(
    history, damage, invariant, also_broken
):
    damage(history)

    exit_code, output = check_ledger()

    assert exit_code == 1, output
    assert invariants_named(output) == {history.member.pk: {invariant, *also_broken}}, output
    assert re.search(r"2 members checked, [1-9]\d* breaches", output), output


def test_every_invariant_of_the_docs_has_a_case():
    documented = re.findall(r"^(\d+)\. \*\*", DOCS.read_text(), re.MULTILINE)

    assert {invariant for _, invariant, _ in CASES} == set(documented)
