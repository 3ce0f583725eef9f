"""Races proven with real threads behind a barrier, against PostgreSQL row locks."""

from decimal import Decimal

import pytest
from django.db import DatabaseError, connection, transaction

from core.errors import AppError
from loyalty.models import LedgerEntry, Member, Purchase, Refund
from loyalty.services.purchases import purchase_record
from loyalty.services.refunds import refund_record
from tests.concurrency import run_together
from tests.invariants import assert_ledger_consistent

pytestmark = pytest.mark.django_db(transaction=True)

PHONE = "+8613800138000"
THREADS = 8


def purchase(store, order_id, amount, phone=PHONE):
    return lambda: purchase_record(
        store=store, phone=phone, order_id=order_id, amount=Decimal(amount)
    )


def refund(store, order_id, refund_id, amount):
    return lambda: refund_record(
        store=store, order_id=order_id, refund_id=refund_id, amount=Decimal(amount)
    )


def test_concurrent_purchases_for_one_new_member_all_count(store):
    results = run_together([purchase(store, f"O{i}", "10.00") for i in range(THREADS * 2)])

    assert all(r.created for r in results)
    assert Member.objects.get(phone=PHONE).balance == 10 * THREADS * 2
    assert_ledger_consistent()


def test_concurrent_purchases_and_refunds_for_one_member_keep_every_invariant(store):
    for i in range(THREADS):
        purchase_record(store=store, phone=PHONE, order_id=f"P{i}", amount=Decimal("100.00"))

    calls = []
    for i in range(THREADS):
        calls.append(refund(store, f"P{i}", "R1", "40.00"))
        calls.append(refund(store, f"P{i}", "R2", "60.00"))
        calls.append(purchase(store, f"N{i}", "25.00"))
    results = run_together(calls)

    assert not [r for r in results if isinstance(r, AppError)]
    assert Member.objects.get(phone=PHONE).balance == 25 * THREADS
    assert Refund.objects.count() == 2 * THREADS
    assert_ledger_consistent()


def test_the_same_order_sent_many_times_at_once_earns_once(store):
    results = run_together([purchase(store, "SAME", "50.00") for _ in range(THREADS)])

    assert sum(r.created for r in results) == 1
    assert {r.record.pk for r in results} == {Purchase.objects.get().pk}
    assert Member.objects.get(phone=PHONE).balance == 50
    assert LedgerEntry.objects.count() == 1


def test_the_same_order_for_different_phones_at_once_is_one_purchase_and_conflicts(store):
    phones = [f"+86138001380{i:02d}" for i in range(THREADS)]
    results = run_together([purchase(store, "SAME", "50.00", phone=p) for p in phones])

    created = [r for r in results if not isinstance(r, AppError)]
    assert len(created) == 1
    assert all(r.code == "idempotency_conflict" for r in results if isinstance(r, AppError))
    assert Purchase.objects.count() == 1
    assert LedgerEntry.objects.count() == 1
    assert_ledger_consistent()


def test_refunds_racing_on_one_purchase_never_refund_more_than_it_cost(store):
    purchase_record(store=store, phone=PHONE, order_id="P", amount=Decimal("100.00"))

    results = run_together([refund(store, "P", f"R{i}", "30.00") for i in range(THREADS)])

    refused = [r for r in results if isinstance(r, AppError)]
    assert len(refused) == THREADS - 3
    assert {r.code for r in refused} == {"refund_exceeds_purchase"}
    assert Purchase.objects.get().refunded_amount == Decimal("90.00")
    assert Member.objects.get(phone=PHONE).balance == 10
    assert_ledger_consistent()


def test_the_database_refuses_to_update_or_delete_a_ledger_entry(store):
    purchase_record(store=store, phone=PHONE, order_id="P", amount=Decimal("100.00"))
    entry = LedgerEntry.objects.get()

    for statement in (
        "UPDATE loyalty_ledgerentry SET points = 1000 WHERE id = %s",
        "DELETE FROM loyalty_ledgerentry WHERE id = %s",
    ):
        with (
            pytest.raises(DatabaseError, match="append-only"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(statement, [entry.pk])

    entry.refresh_from_db()
    assert entry.points == 100
