"""Reward orders racing, with real threads behind a barrier against PostgreSQL row
locks: the last unit goes to exactly one member, limits hold, and a pickup and a
cancel of one order never both win."""

import re
import threading
import time

import pytest
from django.db import connection, connections, transaction
from django.test.utils import CaptureQueriesContext

from catalog.models import RewardItem, RewardOrder
from catalog.services import reward_order_cancel, reward_order_fulfil, reward_order_place
from core.errors import AppError
from loyalty.models import LedgerEntry, Member
from loyalty.services.points import member_lock
from loyalty.services.stores import store_create
from tests.catalog.factories import RewardItemFactory
from tests.concurrency import run_together
from tests.factories import earn
from tests.invariants import assert_ledger_consistent

pytestmark = pytest.mark.django_db(transaction=True)

PHONE = "+8613800138000"
MEMBERS = 12
ROUNDS = 8


def refusal_codes(results):
    return sorted(r.code for r in results if isinstance(r, AppError))


def place(member, item, quantity=1, store=None):
    return lambda: reward_order_place(
        member=member, item_id=item.pk, quantity=quantity, store=store
    )


def test_the_last_unit_goes_to_exactly_one_of_many_members(store):
    # Given one lamp left, and 12 members with enough points for it
    phones = [f"+86138001380{i:02d}" for i in range(MEMBERS)]
    for phone in phones:
        earn(store=store, phone=phone, amount="500.00")
    lamp = RewardItemFactory(points=300, stock=1)

    # When they all order it at once
    results = run_together([place(m, lamp, store=store) for m in Member.objects.all()])

    # Then one gets it, the others are told it is gone and keep their points
    [winner] = [r for r in results if isinstance(r, RewardOrder)]
    assert refusal_codes(results) == ["out_of_stock"] * (MEMBERS - 1)
    lamp.refresh_from_db()
    assert lamp.stock == 0
    balances = dict(Member.objects.values_list("pk", "balance"))
    assert balances.pop(winner.member_id) == 200
    assert set(balances.values()) == {500}
    assert LedgerEntry.objects.filter(kind="reward").count() == 1
    assert_ledger_consistent()


def test_a_shelf_of_five_serves_five_orders_of_one_among_many(store):
    phones = [f"+86138001380{i:02d}" for i in range(MEMBERS)]
    for phone in phones:
        earn(store=store, phone=phone, amount="500.00")
    mug = RewardItemFactory(points=100, stock=5)

    calls = [place(m, mug, store=store) for m in Member.objects.all()]
    calls += [place(m, mug) for m in Member.objects.all()]
    results = run_together(calls)

    assert len([r for r in results if isinstance(r, RewardOrder)]) == 5
    assert refusal_codes(results) == ["out_of_stock"] * (2 * MEMBERS - 5)
    mug.refresh_from_db()
    assert mug.stock == 0
    assert sum(Member.objects.values_list("balance", flat=True)) == 500 * MEMBERS - 5 * 100
    assert_ledger_consistent()


def test_one_member_ordering_many_times_at_once_stays_within_the_limit(store):
    earn(store=store, phone=PHONE, amount="5000.00")
    member = Member.objects.get()
    cap = RewardItemFactory(points=100, per_member_limit=3)

    results = run_together([place(member, cap, store=store) for _ in range(10)])

    assert len([r for r in results if isinstance(r, RewardOrder)]) == 3
    assert refusal_codes(results) == ["limit_exceeded"] * 7
    assert Member.objects.get().balance == 4700
    assert_ledger_consistent()


def test_a_member_ordering_more_than_their_points_at_once_never_goes_below_zero(store):
    earn(store=store, phone=PHONE, amount="1000.00")
    member = Member.objects.get()
    item = RewardItemFactory(points=300)

    results = run_together([place(member, item, store=store) for _ in range(10)])

    assert len([r for r in results if isinstance(r, RewardOrder)]) == 3
    assert refusal_codes(results) == ["insufficient_points"] * 7
    assert Member.objects.get().balance == 100
    assert not LedgerEntry.objects.filter(balance_after__lt=0).exists()
    assert_ledger_consistent()


def test_cancels_and_new_orders_at_once_keep_the_stock_exact(store):
    # Given 4 orders that took the whole stock of 4, and 8 members waiting for one
    phones = [f"+86138001380{i:02d}" for i in range(MEMBERS)]
    for phone in phones:
        earn(store=store, phone=phone, amount="500.00")
    members = list(Member.objects.order_by("pk"))
    lamp = RewardItemFactory(points=300, stock=4)
    placed = [place(m, lamp, store=store)() for m in members[:4]]

    # When the 4 are cancelled while the 8 order
    calls = [lambda o=o: reward_order_cancel(order_id=o.pk, store=store) for o in placed]
    calls += [place(m, lamp, store=store) for m in members[4:]]
    results = run_together(calls)

    # Then the stock left is what the cancels returned minus what the new orders took
    assert all(isinstance(r, RewardOrder) for r in results[:4])
    taken = len([r for r in results[4:] if isinstance(r, RewardOrder)])
    assert refusal_codes(results) == ["out_of_stock"] * (8 - taken)
    lamp.refresh_from_db()
    assert lamp.stock == 4 - taken
    assert RewardOrder.objects.filter(status="pending").count() == taken
    assert_ledger_consistent()


def test_two_stores_fulfilling_one_code_at_once_hand_it_over_once(store):
    other_store, _key = store_create(name="POS counter")
    earn(store=store, phone=PHONE, amount="5000.00")
    member = Member.objects.get()
    item = RewardItemFactory(points=100)
    orders = [place(member, item, store=store)() for _ in range(ROUNDS)]

    for placed in orders:
        results = run_together(
            [
                lambda o=placed, s=s: reward_order_fulfil(store=s, code=o.code)
                for s in (store, other_store)
            ]
        )

        assert len([r for r in results if isinstance(r, RewardOrder)]) == 1
        assert refusal_codes(results) == ["invalid_state"]

    assert RewardOrder.objects.filter(status="fulfilled").count() == ROUNDS
    assert Member.objects.get().balance == 5000 - 100 * ROUNDS
    assert_ledger_consistent()


def test_one_store_sending_a_pickup_twice_at_once_hands_it_over_once(store):
    # A till that lost the answer retries while the first pickup is still running
    earn(store=store, phone=PHONE, amount="5000.00")
    member = Member.objects.get()
    item = RewardItemFactory(points=100)
    orders = [place(member, item, store=store)() for _ in range(ROUNDS)]

    for placed in orders:
        results = run_together([lambda o=placed: reward_order_fulfil(store=store, code=o.code)] * 2)

        assert refusal_codes(results) == []
        assert [(r.pk, r.status) for r in results] == [(placed.pk, "fulfilled")] * 2
        assert results[0].closed_at == results[1].closed_at

    assert RewardOrder.objects.filter(status="fulfilled", fulfilled_by=store).count() == ROUNDS
    assert Member.objects.get().balance == 5000 - 100 * ROUNDS
    assert_ledger_consistent()


def wait_until_done_or_waiting_for_a_lock(thread):
    for _ in range(500):
        if not thread.is_alive():
            return
        with connection.cursor() as cursor:
            # Activity is read once per transaction unless the snapshot is dropped.
            cursor.execute("SELECT pg_stat_clear_snapshot()")
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND datname = current_database() AND pid <> pg_backend_pid()"
            )
            if cursor.fetchone()[0]:
                return
        time.sleep(0.01)
    raise AssertionError("the pickup neither finished nor waited for a lock")


def test_a_pickup_meeting_a_cancel_of_the_same_order_has_exactly_one_winner(store):
    # Given a pending order, and a cancel that has taken the member's lock (its first step)
    other_store, _key = store_create(name="POS counter")
    earn(store=store, phone=PHONE, amount="1000.00")
    member = Member.objects.get()
    placed = place(member, RewardItemFactory(points=100, stock=1), store=store)()
    outcome = {}

    def fulfil():
        try:
            outcome["pickup"] = reward_order_fulfil(store=other_store, code=placed.code)
        except Exception as error:  # noqa: BLE001 - whatever it is, the test reports it
            outcome["pickup"] = error
        finally:
            connections.close_all()

    with transaction.atomic():
        member_lock(member.pk)
        # When the customer shows the code at another store at that very moment
        clerk = threading.Thread(target=fulfil)
        clerk.start()
        wait_until_done_or_waiting_for_a_lock(clerk)
        # And the cancel goes on
        try:
            outcome["cancel"] = reward_order_cancel(order_id=placed.pk, store=store)
        except AppError as refusal:
            outcome["cancel"] = refusal
    clerk.join()

    # Then one of them wins and the other is told the order's state, with nothing broken
    results = [outcome["pickup"], outcome["cancel"]]
    assert all(isinstance(r, RewardOrder | AppError) for r in results), results
    assert refusal_codes(results) == ["invalid_state"]
    status = RewardOrder.objects.get().status
    expected = {"fulfilled": (900, 0), "cancelled": (1000, 1)}[status]
    assert (Member.objects.get().balance, RewardItem.objects.get().stock) == expected
    assert_ledger_consistent()


def lock_sequence(queries):
    """What each statement locked or wrote, in order: ("lock" | "update", table)."""
    sequence = []
    for query in queries:
        sql = query["sql"]
        if sql.startswith("UPDATE"):
            sequence.append(("update", re.search(r'UPDATE "(\w+)"', sql).group(1)))
        elif " FOR UPDATE" in sql:
            select, _for, rest = sql.rpartition(" FOR UPDATE")
            # FOR UPDATE OF names the tables it locks; plain FOR UPDATE locks every joined row.
            tables = re.findall(r'"(\w+)"', rest) or re.findall(r'(?:FROM|JOIN) "(\w+)"', select)
            sequence += [("lock", table) for table in tables]
    return sequence


def first_touch(sequence, table):
    return next(i for i, (_action, name) in enumerate(sequence) if name == table)


def assert_member_then_lots_then_stock(sequence):
    assert sequence[0] == ("lock", "loyalty_member"), sequence
    assert first_touch(sequence, "loyalty_lot") < first_touch(sequence, "catalog_rewarditem"), (
        sequence
    )


def test_an_order_locks_the_member_then_the_lots_then_the_stock(store):
    earn(store=store, phone=PHONE, amount="1000.00")
    item = RewardItemFactory(points=100, stock=5)

    with CaptureQueriesContext(connection) as queries:
        place(Member.objects.get(), item, store=store)()

    assert_member_then_lots_then_stock(lock_sequence(queries))
    assert_ledger_consistent()


def test_a_cancel_locks_the_member_then_the_lots_then_the_stock(store):
    earn(store=store, phone=PHONE, amount="1000.00")
    placed = place(Member.objects.get(), RewardItemFactory(points=100, stock=5), store=store)()

    with CaptureQueriesContext(connection) as queries:
        reward_order_cancel(order_id=placed.pk, store=store)

    assert_member_then_lots_then_stock(lock_sequence(queries))
    assert_ledger_consistent()
