"""Fault injection: the database connection of a request is dropped while the request
is inside its transaction, after it wrote the entry, the lot and the new balance but
before it committed. Nothing of it may remain, and the client's retry succeeds, once.
And between requests: a kept connection the database ended, or left in a failed
transaction, is replaced before the next request runs (core/postgresql).

Each request runs in a thread of its own, as in a server, so that its connection is
not the test's; the thread serves the retry too, on a new connection."""

from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import psycopg
import pytest
from django.db import close_old_connections, connections
from rest_framework.test import APIClient

from loyalty.models import IdempotentRequest, LedgerEntry, Lot, Member, Purchase, Redemption
from tests.factories import earn
from tests.invariants import assert_ledger_consistent
from tests.processes import created_test_database_url

pytestmark = pytest.mark.django_db(transaction=True)

PHONE = "+8613800138000"
WAIT_SECONDS = 10


@pytest.fixture
def server():
    """One request-serving thread, with the database connection it keeps between requests."""
    with ThreadPoolExecutor(max_workers=1) as thread:
        yield thread
        thread.submit(connections.close_all).result()


def post(store_key: str, path: str, body: dict, idempotency_key: str | None = None):
    headers = {"authorization": f"Api-Key {store_key}"}
    if idempotency_key:
        headers["idempotency-key"] = idempotency_key
    client = APIClient(raise_request_exception=False)
    try:
        return client.post(path, body, format="json", headers=headers)
    finally:
        # What a server does after every request (the test client leaves it out): a
        # connection that failed is closed, so the next request opens a new one.
        close_old_connections()


def test_a_purchase_whose_connection_drops_mid_transaction_leaves_nothing_and_the_retry_earns_once(
    store_and_key, server
):
    store, key = store_and_key
    purchase = {"phone": "13800138000", "order_id": "POS-1", "amount": "300.00"}

    # given another transaction holding the order's place in the unique index, so the
    # request waits there, after crediting the points, until its connection is cut
    with order_held_open(store_id=store.pk, order_id="POS-1"):
        request = server.submit(post, key, "/api/v1/purchases", purchase)
        backend = wait_for_backend_waiting_on_a_lock("WITH rules AS")
        assert {"loyalty_member", "loyalty_ledgerentry", "loyalty_lot"} <= tables_written_by(
            backend
        )
        terminate(backend)
        response = request.result(WAIT_SECONDS)

    # then the client got an error and nothing of the request was kept
    assert response.status_code == 500
    assert not Member.objects.filter(phone=PHONE).exists()
    assert not LedgerEntry.objects.exists()
    assert not Lot.objects.exists()
    assert not Purchase.objects.exists()
    assert not IdempotentRequest.objects.exists()
    assert_ledger_consistent()

    # when the storefront sends the purchase again, twice, on the server's next connection
    retried = server.submit(post, key, "/api/v1/purchases", purchase).result()
    replayed = server.submit(post, key, "/api/v1/purchases", purchase).result()

    # then the points are earned once
    assert retried.status_code == 201, retried.json()
    assert retried.json()["points_earned"] == 300
    assert (replayed.status_code, replayed.json()) == (200, retried.json())
    assert Member.objects.get(phone=PHONE).balance == 300
    assert LedgerEntry.objects.count() == 1
    assert_ledger_consistent()


def test_a_connection_the_database_ended_between_requests_is_replaced_before_the_next_one(
    store_and_key, server
):
    store, key = store_and_key
    first = {"phone": "13800138000", "order_id": "POS-1", "amount": "300.00"}
    second = {"phone": "13800138000", "order_id": "POS-2", "amount": "200.00"}
    server.submit(post, key, "/api/v1/purchases", first).result()
    backend = server.submit(backend_of_the_server).result()

    # given the database ended the session the server keeps between requests (a restart,
    # an idle timeout), and the server has not heard of it
    terminate(backend)
    wait_until_ended(backend)

    # when the next purchase comes in
    response = server.submit(post, key, "/api/v1/purchases", second).result()

    # then the server noticed before running it, and it earned on a new connection
    assert response.status_code == 201, response.content
    assert Member.objects.get(phone=PHONE).balance == 500
    assert server.submit(backend_of_the_server).result() != backend
    assert_ledger_consistent()


def test_a_healthy_connection_is_kept_from_request_to_request(store_and_key, server):
    store, key = store_and_key
    purchase = {"phone": "13800138000", "order_id": "POS-1", "amount": "300.00"}
    server.submit(post, key, "/api/v1/purchases", purchase).result()
    backend = server.submit(backend_of_the_server).result()

    # when more requests come in on the same, idle and healthy, connection
    for _ in range(3):
        server.submit(post, key, "/api/v1/purchases", purchase).result()

    # then the health check passed it each time: no reconnection
    assert server.submit(backend_of_the_server).result() == backend


def test_a_connection_left_in_an_aborted_transaction_fails_the_health_check(db):
    connection = connections["default"]
    connection.ensure_connection()
    assert connection.is_usable()

    # given a transaction that failed and was not rolled back
    raw = connection.connection
    raw.autocommit = False
    with pytest.raises(psycopg.errors.DivisionByZero):
        raw.execute("SELECT 1 / 0")

    # then the connection is not fit for the next request, as `SELECT 1` would have found
    try:
        assert not connection.is_usable()
    finally:
        raw.rollback()
        raw.autocommit = True
    assert connection.is_usable()


def test_a_redemption_whose_connection_drops_after_the_debit_leaves_the_points_and_lots_untouched(
    store_and_key, server
):
    store, key = store_and_key
    earn(store=store, phone=PHONE, amount="1000.00")
    member = Member.objects.get(phone=PHONE)
    before = ledger_of(member)
    hold = {"phone": PHONE, "order_id": "POS-2", "order_total": "80.00", "points": 500}

    # given another transaction holding the order's place in the unique index of live
    # redemptions, so the hold waits there, after debiting the lots, until its connection is cut
    with redemption_held_open(store_id=store.pk, order_id="POS-2"):
        request = server.submit(post, key, "/api/v1/redemptions", hold, "hold-1")
        backend = wait_for_backend_waiting_on_a_lock("open_lots AS (")
        assert {
            "loyalty_member",
            "loyalty_ledgerentry",
            "loyalty_lot",
            "loyalty_allocation",
        } <= tables_written_by(backend)
        terminate(backend)
        response = request.result(WAIT_SECONDS)

    # then the hold failed and the balance, the entries and the lots are as before
    assert response.status_code == 500
    assert ledger_of(member) == before
    assert not Redemption.objects.exists()
    assert not IdempotentRequest.objects.exists()
    assert_ledger_consistent()

    # when the storefront retries the hold with its Idempotency-Key, twice
    retried = server.submit(post, key, "/api/v1/redemptions", hold, "hold-1").result()
    replayed = server.submit(post, key, "/api/v1/redemptions", hold, "hold-1").result()

    # then the points are held once
    assert retried.status_code == 201, retried.json()
    assert (replayed.status_code, replayed.json()) == (200, retried.json())
    assert Member.objects.get(pk=member.pk).balance == 500
    assert Redemption.objects.get().points == 500
    assert LedgerEntry.objects.filter(kind=LedgerEntry.Kind.REDEEM).count() == 1
    assert_ledger_consistent()


@contextmanager
def order_held_open(*, store_id: int, order_id: str):
    """A transaction of another client that inserted (store, order_id) and neither
    commits nor rolls back until the block ends; then it rolls back."""
    with psycopg.connect(created_test_database_url()) as blocker:
        [member_id] = blocker.execute(
            "INSERT INTO loyalty_member (phone, balance, created_at) "
            "VALUES ('+8613900139000', 0, now()) RETURNING id"
        ).fetchone()
        blocker.execute(
            "INSERT INTO loyalty_purchase (store_id, order_id, member_id, amount, earn_rate, "
            "points_earned, balance_after, refunded_amount, points_reversed, created_at) "
            "VALUES (%s, %s, %s, 1, 1, 0, 0, 0, 0, now())",
            [store_id, order_id, member_id],
        )
        try:
            yield
        finally:
            blocker.rollback()


@contextmanager
def redemption_held_open(*, store_id: int, order_id: str):
    """A transaction of another client holding points on (store, order_id) for another
    member, neither committed nor rolled back until the block ends; then rolled back."""
    with psycopg.connect(created_test_database_url()) as blocker:
        [member_id] = blocker.execute(
            "INSERT INTO loyalty_member (phone, balance, created_at) "
            "VALUES ('+8613900139000', 0, now()) RETURNING id"
        ).fetchone()
        [entry_id] = blocker.execute(
            "INSERT INTO loyalty_ledgerentry (member_id, kind, points, balance_after, job, "
            "reference, reason, created_at) VALUES (%s, 'redeem', -1, 0, '', '', '', now()) "
            "RETURNING id",
            [member_id],
        ).fetchone()
        blocker.execute(
            "INSERT INTO loyalty_redemption (store_id, order_id, member_id, order_total, points, "
            "discount, status, hold_expires_at, debit_entry_id, created_at) "
            "VALUES (%s, %s, %s, 1, 1, 0, 'held', now(), %s, now())",
            [store_id, order_id, member_id, entry_id],
        )
        try:
            yield
        finally:
            blocker.rollback()


def wait_for_backend_waiting_on_a_lock(statement: str) -> int:
    """The backend of the request, once it waits on a lock in a statement containing this
    (near its start: pg_stat_activity keeps only the first kilobyte of a statement)."""
    with psycopg.connect(created_test_database_url(), autocommit=True) as observer:
        for _ in range(WAIT_SECONDS * 100):
            row = observer.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock' AND query LIKE %s",
                [f"%{statement}%"],
            ).fetchone()
            if row:
                return row[0]
            observer.execute("SELECT pg_sleep(0.01)")
    pytest.fail(f"the request never waited in {statement}")


def tables_written_by(backend: int) -> set[str]:
    """The tables the backend's open transaction inserted into or updated."""
    with psycopg.connect(created_test_database_url(), autocommit=True) as observer:
        rows = observer.execute(
            "SELECT relation::regclass::text FROM pg_locks "
            "WHERE pid = %s AND locktype = 'relation' AND mode = 'RowExclusiveLock'",
            [backend],
        ).fetchall()
    return {table for (table,) in rows}


def terminate(backend: int) -> None:
    with psycopg.connect(created_test_database_url(), autocommit=True) as killer:
        assert killer.execute("SELECT pg_terminate_backend(%s)", [backend]).fetchone()[0]


def backend_of_the_server() -> int:
    return connections["default"].connection.info.backend_pid


def wait_until_ended(backend: int) -> None:
    with psycopg.connect(created_test_database_url(), autocommit=True) as observer:
        for _ in range(WAIT_SECONDS * 100):
            if not observer.execute(
                "SELECT FROM pg_stat_activity WHERE pid = %s", [backend]
            ).fetchone():
                return
            observer.execute("SELECT pg_sleep(0.01)")
    pytest.fail(f"backend {backend} did not end")


def ledger_of(member: Member) -> tuple:
    member.refresh_from_db()
    return (
        member.balance,
        list(member.entries.order_by("pk").values_list("kind", "points", "balance_after")),
        list(member.lots.order_by("pk").values_list("pk", "remaining")),
    )
