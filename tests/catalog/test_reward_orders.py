"""Reward orders, through the API: ordered by a store for a member or by the customer in
the app, picked up at any store with a short code, cancelled with points and stock back;
limits, windows and stock; replays; and bad input that changes nothing."""

import re
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine
from rest_framework.test import APIClient

from accounts.models import User
from catalog.models import RewardItem, RewardOrder
from catalog.services import CODE_ALPHABET
from loyalty.models import IdempotentRequest, LedgerEntry, Lot, Member, Store
from tests.catalog.factories import PASSWORD, RewardItemFactory, customer_client
from tests.factories import earn
from tests.invariants import assert_ledger_consistent

pytestmark = pytest.mark.django_db

PHONE = "+8613800138000"
OTHER_PHONE = "+8613900139000"
SHANGHAI = ZoneInfo("Asia/Shanghai")
ORDER_URL = "/api/v1/reward-orders"
FULFIL_URL = "/api/v1/reward-orders/fulfil"
LOOKUP_URL = "/api/v1/reward-orders/lookup"
MY_ORDERS_URL = "/api/v1/me/reward-orders"
CODE_FORMAT = re.compile(f"[{CODE_ALPHABET}]{{8}}")
LOOK_ALIKES = set("0O1IL2Z5S8BUV")
MISSING = object()


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # Argon2 takes a tenth of a second a hash by design; these tests are about orders.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def at(*args):
    return time_machine.travel(datetime(*args, tzinfo=SHANGHAI), tick=False)


def order(client, item, quantity=1, phone=PHONE, **headers):
    body = {"phone": phone, "item_id": item.pk, "quantity": quantity}
    return client.post(ORDER_URL, body, format="json", headers=headers)


def my_order(client, item, quantity=1, **headers):
    body = {"item_id": item.pk, "quantity": quantity}
    return client.post(MY_ORDERS_URL, body, format="json", headers=headers)


def fulfil(client, code, **headers):
    return client.post(FULFIL_URL, {"code": code}, format="json", headers=headers)


def cancel(client, order_id, **headers):
    return client.post(f"/api/v1/reward-orders/{order_id}/cancel", headers=headers)


def my_cancel(client, order_id, **headers):
    return client.post(f"/api/v1/me/reward-orders/{order_id}/cancel", headers=headers)


def read(client, order_id):
    return client.get(f"/api/v1/reward-orders/{order_id}")


def look_up(client, code):
    return client.post(LOOKUP_URL, {"code": code}, format="json")


def balance(phone=PHONE):
    return Member.objects.get(phone=phone).balance


def stock(item):
    item.refresh_from_db()
    return item.stock


def lots(phone=PHONE):
    return list(
        Lot.objects.filter(member__phone=phone)
        .order_by("pk")
        .values_list("points", "remaining", "expires_at")
    )


def database_state():
    return {
        "counts": {
            model.__name__: model.objects.count()
            for model in (Member, LedgerEntry, Lot, RewardOrder, IdempotentRequest)
        },
        "balances": list(Member.objects.order_by("pk").values_list("phone", "balance")),
        "lots": list(Lot.objects.order_by("pk").values_list("remaining", flat=True)),
        "stock": list(RewardItem.objects.order_by("pk").values_list("stock", flat=True)),
        "orders": list(RewardOrder.objects.order_by("pk").values_list("status", flat=True)),
    }


def assert_refused(response, status: int, code: str):
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert isinstance(body["error"]["details"], dict)
    return body["error"]


@pytest.fixture
def pos_store(other_store_client):
    return Store.objects.get(name="POS counter")


# --- Ordering at a store ------------------------------------------------------------


def test_a_store_orders_a_reward_for_a_member(store, store_client):
    # Given 2000 points and a tote bag for 800 points plus 10.00, 5 in stock
    earn(store=store, phone=PHONE, amount="2000.00")
    bag = RewardItemFactory(name="Canvas tote bag", points=800, cash_price="10.00", stock=5)

    # When the store orders two for the member
    response = order(store_client, bag, quantity=2)

    # Then the points are taken at once, the stock goes down, and a pickup code comes back
    assert response.status_code == 201, response.content
    body = response.json()
    assert body == {
        "id": body["id"],
        "code": body["code"],
        "status": "pending",
        "item": {"id": bag.pk, "name": "Canvas tote bag"},
        "quantity": 2,
        "points": 1600,
        "cash_due": "20.00",
        "created_at": body["created_at"],
        "member": {"phone": PHONE, "balance": 400},
    }
    assert CODE_FORMAT.fullmatch(body["code"])
    assert stock(bag) == 3
    entry = LedgerEntry.objects.get(kind="reward")
    assert (entry.points, entry.store, entry.reference) == (-1600, store, body["code"])
    assert_ledger_consistent()


def test_pickup_codes_are_8_characters_without_look_alikes_and_unique(store, store_client):
    earn(store=store, phone=PHONE, amount="10000.00")
    pen = RewardItemFactory(points=100)

    codes = [order(store_client, pen).json()["code"] for _ in range(40)]

    assert all(CODE_FORMAT.fullmatch(code) for code in codes), codes
    assert not LOOK_ALIKES & set("".join(codes))
    assert len(set(codes)) == 40
    assert_ledger_consistent()


def draw_codes(monkeypatch, *codes):
    """The next codes the service draws, one character per call of secrets.choice."""
    characters = iter("".join(codes))
    monkeypatch.setattr("catalog.services.secrets.choice", lambda _alphabet: next(characters))


def test_a_code_is_unique_among_open_orders_and_may_come_back_once_closed(
    store, store_client, monkeypatch
):
    earn(store=store, phone=PHONE, amount="5000.00")
    pen = RewardItemFactory(points=100)
    draw_codes(monkeypatch, "ACACACAC", "ACACACAC", "TWTWTWTW", "ACACACAC")

    # When a second order draws the code of an open order, it draws again
    first = order(store_client, pen).json()
    second = order(store_client, pen).json()
    assert (first["code"], second["code"]) == ("ACACACAC", "TWTWTWTW")

    # And once the first is picked up, its code may serve a new order
    assert fulfil(store_client, "ACACACAC").status_code == 200
    third = order(store_client, pen).json()
    assert third["code"] == "ACACACAC"

    # And the code then fulfils the open order
    response = fulfil(store_client, "ACACACAC")
    assert response.status_code == 200, response.content
    assert response.json()["id"] == third["id"]
    assert_ledger_consistent()


def test_cash_due_is_the_cash_part_times_the_quantity(store, store_client):
    earn(store=store, phone=PHONE, amount="5000.00")
    mug = RewardItemFactory(points=100, cash_price=Decimal("12.34"))

    response = order(store_client, mug, quantity=3)

    assert response.json()["cash_due"] == "37.02"
    assert RewardOrder.objects.get().cash_due == Decimal("37.02")
    assert_ledger_consistent()


def test_an_item_without_a_cash_part_is_due_nothing(store, store_client):
    earn(store=store, phone=PHONE, amount="5000.00")

    response = order(store_client, RewardItemFactory(points=100), quantity=20)

    assert response.status_code == 201, response.content
    assert response.json()["cash_due"] == "0.00"
    assert_ledger_consistent()


def test_unlimited_stock_never_runs_out(store, store_client):
    earn(store=store, phone=PHONE, amount="10000.00")
    voucher = RewardItemFactory(points=10, stock=None)

    for _ in range(5):
        assert order(store_client, voucher, quantity=20).status_code == 201

    assert stock(voucher) is None
    assert balance() == 10000 - 5 * 20 * 10
    assert_ledger_consistent()


def test_more_than_the_stock_left_is_out_of_stock_and_changes_nothing(store, store_client):
    earn(store=store, phone=PHONE, amount="10000.00")
    lamp = RewardItemFactory(points=100, stock=2)
    before = database_state()

    error = assert_refused(order(store_client, lamp, quantity=3), 422, "out_of_stock")
    assert error["details"] == {"item_id": lamp.pk, "requested": 3}
    assert database_state() == before

    assert order(store_client, lamp, quantity=2).status_code == 201
    assert stock(lamp) == 0
    assert_refused(order(store_client, lamp), 422, "out_of_stock")
    assert balance() == 10000 - 200
    assert_ledger_consistent()


def test_too_few_points_is_insufficient_points_and_takes_no_stock(store, store_client):
    earn(store=store, phone=PHONE, amount="799.00")
    bag = RewardItemFactory(points=800, stock=5)
    before = database_state()

    assert_refused(order(store_client, bag), 422, "insufficient_points")

    assert database_state() == before
    assert_ledger_consistent()


def test_ordering_for_an_unknown_phone_or_item_is_not_found(store, store_client):
    earn(store=store, phone=PHONE, amount="1000.00")
    before = database_state()

    assert_refused(order(store_client, RewardItemFactory.build(pk=10**9)), 404, "not_found")
    assert_refused(order(store_client, RewardItemFactory(), phone=OTHER_PHONE), 404, "not_found")

    assert database_state()["counts"] == before["counts"]
    assert balance() == 1000


@pytest.mark.parametrize(
    "window",
    [
        pytest.param({"is_active": False}, id="inactive"),
        pytest.param({"active_from": datetime(2026, 7, 6, 10, 1, tzinfo=SHANGHAI)}, id="future"),
        pytest.param({"active_until": datetime(2026, 7, 6, 10, 0, tzinfo=SHANGHAI)}, id="ended"),
        pytest.param(
            {
                "active_from": datetime(2026, 6, 1, tzinfo=SHANGHAI),
                "active_until": datetime(2026, 7, 1, tzinfo=SHANGHAI),
            },
            id="past-window",
        ),
    ],
)
def test_an_item_off_sale_is_item_unavailable(store, store_client, window):
    with at(2026, 7, 6, 10, 0):
        earn(store=store, phone=PHONE, amount="1000.00")
        item = RewardItemFactory(points=100, stock=5, **window)
        before = database_state()

        error = assert_refused(order(store_client, item), 422, "item_unavailable")

    assert error["details"] == {"item_id": item.pk}
    assert database_state() == before
    assert_ledger_consistent()


def test_an_item_inside_its_window_can_be_ordered(store, store_client):
    with at(2026, 7, 6, 10, 0):
        earn(store=store, phone=PHONE, amount="1000.00")
        item = RewardItemFactory(
            points=100,
            active_from=datetime(2026, 7, 6, 10, 0, tzinfo=SHANGHAI),
            active_until=datetime(2026, 7, 6, 10, 0, 1, tzinfo=SHANGHAI),
        )

        assert order(store_client, item).status_code == 201
    assert_ledger_consistent()


# --- Per-member limit ---------------------------------------------------------------


def test_the_per_member_limit_counts_pending_and_fulfilled_but_not_cancelled(store, store_client):
    # Given an item a member may have at most 2 of
    earn(store=store, phone=PHONE, amount="5000.00")
    earn(store=store, phone=OTHER_PHONE, amount="5000.00")
    cap = RewardItemFactory(points=100, per_member_limit=2)

    # When the member orders 1, picks it up, and orders 1 more
    first = order(store_client, cap).json()
    assert fulfil(store_client, first["code"]).status_code == 200
    second = order(store_client, cap).json()

    # Then a third is over the limit, as are 3 at once
    before = database_state()
    error = assert_refused(order(store_client, cap), 422, "limit_exceeded")
    assert error["details"] == {"limit": 2, "already": 2, "requested": 1}
    assert_refused(order(store_client, cap, quantity=3, phone=OTHER_PHONE), 422, "limit_exceeded")
    assert database_state() == before

    # And another member has a limit of their own
    assert order(store_client, cap, quantity=2, phone=OTHER_PHONE).status_code == 201

    # And a cancelled order frees its place
    assert cancel(store_client, second["id"]).status_code == 200
    assert order(store_client, cap).status_code == 201
    assert_refused(order(store_client, cap), 422, "limit_exceeded")
    assert_ledger_consistent()


# --- Fulfilling by code -------------------------------------------------------------


def test_any_store_fulfils_an_order_by_its_code_typed_in_lowercase_with_a_dash(
    store, store_client, other_store_client, pos_store
):
    earn(store=store, phone=PHONE, amount="1000.00")
    placed = order(store_client, RewardItemFactory(points=300)).json()
    typed = f"{placed['code'][:4]}-{placed['code'][4:]}".lower()

    # When the customer shows the code at another store
    response = fulfil(other_store_client, typed)

    # Then that store hands the reward over; no points move
    assert response.status_code == 200, response.content
    assert response.json() == {**placed, "status": "fulfilled"}
    fulfilled = RewardOrder.objects.get()
    assert (fulfilled.status, fulfilled.fulfilled_by, fulfilled.store) == (
        "fulfilled",
        pos_store,
        store,
    )
    assert fulfilled.closed_at is not None
    assert balance() == 700
    assert_ledger_consistent()


def test_a_code_with_spaces_is_accepted(store, store_client):
    earn(store=store, phone=PHONE, amount="1000.00")
    code = order(store_client, RewardItemFactory(points=300)).json()["code"]

    response = fulfil(store_client, f" {code[:4]} {code[4:]} ")

    assert response.status_code == 200, response.content
    assert_ledger_consistent()


def test_a_fulfil_sent_again_by_the_same_store_answers_the_fulfilled_order(store, store_client):
    # Given a pickup whose answer the till never got
    earn(store=store, phone=PHONE, amount="1000.00")
    code = order(store_client, RewardItemFactory(points=300)).json()["code"]
    first = fulfil(store_client, code)
    assert first.status_code == 200
    before = database_state()

    # When the till sends it again, the code typed another way
    again = fulfil(store_client, code.lower())

    # Then it is told the reward was handed over, and nothing changes
    assert again.status_code == 200, again.content
    assert again.json() == first.json()
    assert database_state() == before
    assert_ledger_consistent()


def test_a_second_pickup_at_another_store_is_invalid_state(store, store_client, other_store_client):
    earn(store=store, phone=PHONE, amount="1000.00")
    code = order(store_client, RewardItemFactory(points=300)).json()["code"]
    assert fulfil(store_client, code).status_code == 200
    before = database_state()

    error = assert_refused(fulfil(other_store_client, code), 409, "invalid_state")

    assert error["details"] == {"status": "fulfilled"}
    assert database_state() == before
    assert_ledger_consistent()


def test_fulfilling_a_cancelled_order_is_invalid_state(store, store_client):
    earn(store=store, phone=PHONE, amount="1000.00")
    placed = order(store_client, RewardItemFactory(points=300)).json()
    assert cancel(store_client, placed["id"]).status_code == 200
    before = database_state()

    error = assert_refused(fulfil(store_client, placed["code"]), 409, "invalid_state")

    assert error["details"] == {"status": "cancelled"}
    assert database_state() == before
    assert balance() == 1000
    assert_ledger_consistent()


@pytest.mark.parametrize("code", ["AAAAAAAA", "ACDE", "!!!!", "----", "0O1IL2Z5"])
def test_an_unknown_code_is_invalid_code(store, store_client, code):
    earn(store=store, phone=PHONE, amount="1000.00")
    order(store_client, RewardItemFactory(points=300))
    before = database_state()

    assert_refused(fulfil(store_client, code), 422, "invalid_code")

    assert database_state() == before
    assert_ledger_consistent()


@pytest.mark.parametrize(
    "code",
    [
        pytest.param("", id="empty"),
        pytest.param("A" * 33, id="33-chars"),
        pytest.param(True, id="bool"),
        pytest.param(None, id="null"),
        pytest.param(["ACDEFHJK"], id="list"),
        pytest.param({"code": "ACDEFHJK"}, id="object"),
        pytest.param(MISSING, id="missing"),
    ],
)
def test_a_malformed_code_is_a_validation_error(store_client, code):
    body = {} if code is MISSING else {"code": code}

    response = store_client.post(FULFIL_URL, body, format="json")

    assert_refused(response, 400, "validation_error")


@pytest.mark.parametrize("code", [pytest.param(34679347, id="int"), pytest.param(3.5, id="float")])
def test_a_code_sent_as_a_number_is_a_validation_error(store_client, code):
    response = store_client.post(FULFIL_URL, {"code": code}, format="json")

    assert_refused(response, 400, "validation_error")


def test_fulfilling_needs_a_store_key(store, store_client):
    earn(store=store, phone=PHONE, amount="1000.00")
    code = order(store_client, RewardItemFactory(points=300)).json()["code"]
    customer = customer_client(PHONE)

    assert_refused(fulfil(APIClient(), code), 401, "not_authenticated")
    assert_refused(fulfil(customer, code), 401, "not_authenticated")
    assert RewardOrder.objects.get().status == "pending"
    assert_ledger_consistent()


# --- Cancelling at a store ----------------------------------------------------------


def test_a_store_cancel_returns_the_points_to_their_lots_and_the_stock_to_the_item(
    store, store_client
):
    # Given points in two lots with different expiry dates
    with at(2026, 7, 6, 10, 0):
        earn(store=store, phone=PHONE, amount="300.00")
    with at(2026, 8, 6, 10, 0):
        earn(store=store, phone=PHONE, amount="500.00")
    original = lots()
    bag = RewardItemFactory(points=200, stock=3)
    placed = order(store_client, bag, quantity=2).json()
    assert [remaining for _points, remaining, _expiry in lots()] == [0, 400]

    response = cancel(store_client, placed["id"])

    assert response.status_code == 200, response.content
    assert response.json() == {
        **placed,
        "status": "cancelled",
        "member": {"phone": PHONE, "balance": 800},
    }
    assert lots() == original
    assert stock(bag) == 3
    cancelled = RewardOrder.objects.get()
    assert cancelled.cancel_entry.kind == "reward_cancel"
    assert cancelled.cancel_entry.points == 400
    assert_ledger_consistent()


def test_a_store_cannot_cancel_another_stores_order(store, store_client, other_store_client):
    earn(store=store, phone=PHONE, amount="1000.00")
    placed = order(store_client, RewardItemFactory(points=300, stock=1)).json()
    before = database_state()

    assert_refused(cancel(other_store_client, placed["id"]), 404, "not_found")

    assert database_state() == before
    assert_ledger_consistent()


def test_a_store_cannot_cancel_an_order_the_customer_placed_in_the_app(store, store_client):
    earn(store=store, phone=PHONE, amount="1000.00")
    customer = customer_client(PHONE)
    placed = my_order(customer, RewardItemFactory(points=300)).json()
    before = database_state()

    assert_refused(cancel(store_client, placed["id"]), 404, "not_found")

    assert database_state() == before
    assert_ledger_consistent()


def test_a_fulfilled_order_cannot_be_cancelled(store, store_client):
    earn(store=store, phone=PHONE, amount="1000.00")
    item = RewardItemFactory(points=300, stock=5)
    picked_up = order(store_client, item).json()
    assert fulfil(store_client, picked_up["code"]).status_code == 200
    before = database_state()

    error = assert_refused(cancel(store_client, picked_up["id"]), 409, "invalid_state")

    assert error["details"] == {"status": "fulfilled"}
    assert database_state() == before
    assert (balance(), stock(item)) == (700, 4)
    assert_ledger_consistent()


def test_a_cancel_sent_again_answers_the_cancelled_order_and_gives_back_once(store, store_client):
    earn(store=store, phone=PHONE, amount="1000.00")
    item = RewardItemFactory(points=300, stock=5)
    placed = order(store_client, item).json()
    first = cancel(store_client, placed["id"])
    assert first.status_code == 200
    before = database_state()

    again = cancel(store_client, placed["id"])

    assert again.status_code == 200, again.content
    assert again.json() == first.json()
    assert database_state() == before
    assert (balance(), stock(item)) == (1000, 5)
    assert_ledger_consistent()


# --- Replays ------------------------------------------------------------------------


def test_a_replayed_store_order_answers_the_first_response_and_debits_once(store, store_client):
    earn(store=store, phone=PHONE, amount="1000.00")
    bag = RewardItemFactory(points=300, stock=5)
    first = order(store_client, bag, **{"Idempotency-Key": "reward-1"})
    assert first.status_code == 201

    replay = order(store_client, bag, **{"Idempotency-Key": "reward-1"})

    assert replay.status_code == 200
    assert replay.json() == first.json()
    assert RewardOrder.objects.count() == 1
    assert (balance(), stock(bag)) == (700, 4)

    before = database_state()
    conflict = order(store_client, bag, quantity=2, **{"Idempotency-Key": "reward-1"})
    assert_refused(conflict, 409, "idempotency_conflict")
    assert database_state() == before
    assert_ledger_consistent()


def test_a_replayed_customer_order_answers_the_first_response_and_debits_once(store):
    earn(store=store, phone=PHONE, amount="1000.00")
    bag = RewardItemFactory(points=300, stock=5)
    customer = customer_client(PHONE)
    first = my_order(customer, bag, **{"Idempotency-Key": "app-1"})
    assert first.status_code == 201

    replay = my_order(customer, bag, **{"Idempotency-Key": "app-1"})

    assert replay.status_code == 200
    assert replay.json() == first.json()
    assert (RewardOrder.objects.count(), balance(), stock(bag)) == (1, 700, 4)

    before = database_state()
    assert_refused(
        my_order(customer, bag, 2, **{"Idempotency-Key": "app-1"}), 409, "idempotency_conflict"
    )
    assert database_state() == before
    assert_ledger_consistent()


def test_two_customers_may_use_the_same_idempotency_key(store):
    earn(store=store, phone=PHONE, amount="1000.00")
    earn(store=store, phone=OTHER_PHONE, amount="1000.00")
    item = RewardItemFactory(points=300)

    for phone in (PHONE, OTHER_PHONE):
        response = my_order(customer_client(phone), item, **{"Idempotency-Key": "app-1"})
        assert response.status_code == 201, response.content

    assert (balance(PHONE), balance(OTHER_PHONE)) == (700, 700)
    assert_ledger_consistent()


@pytest.mark.parametrize("action", ["fulfil", "cancel"])
def test_a_key_sent_again_for_another_order_is_a_conflict(store, store_client, action):
    earn(store=store, phone=PHONE, amount="1000.00")
    item = RewardItemFactory(points=300)
    first, second = (order(store_client, item).json() for _ in range(2))
    send = {
        "fulfil": lambda placed: fulfil(store_client, placed["code"], **{"Idempotency-Key": "k"}),
        "cancel": lambda placed: cancel(store_client, placed["id"], **{"Idempotency-Key": "k"}),
    }[action]
    assert send(first).status_code == 200
    before = database_state()

    assert_refused(send(second), 409, "idempotency_conflict")

    assert database_state() == before
    assert RewardOrder.objects.get(pk=second["id"]).status == "pending"


def test_a_fulfil_retried_with_its_key_replays_the_first_answer(store, store_client):
    earn(store=store, phone=PHONE, amount="1000.00")
    code = order(store_client, RewardItemFactory(points=300)).json()["code"]
    first = fulfil(store_client, code, **{"Idempotency-Key": "pickup-1"})
    # Given the member earned since
    earn(store=store, phone=PHONE, amount="50.00")

    replay = fulfil(store_client, code, **{"Idempotency-Key": "pickup-1"})

    assert replay.status_code == 200, replay.content
    assert replay.json() == first.json()
    assert first.json()["member"]["balance"] == 700


def test_a_customer_cancel_sent_again_answers_the_cancelled_order(store):
    earn(store=store, phone=PHONE, amount="1000.00")
    customer = customer_client(PHONE)
    placed = my_order(customer, RewardItemFactory(points=300, stock=2)).json()
    first = my_cancel(customer, placed["id"], **{"Idempotency-Key": "app-cancel-1"})
    assert first.status_code == 200
    before = database_state()

    for headers in ({"Idempotency-Key": "app-cancel-1"}, {}):
        again = my_cancel(customer, placed["id"], **headers)
        assert again.status_code == 200, again.content
        assert again.json() == first.json()

    assert database_state() == before
    assert balance() == 1000
    assert_ledger_consistent()


# --- Reading an order, and previewing a pickup code ---------------------------------


def test_a_store_reads_an_order_it_placed_as_it_is_now(store, store_client):
    earn(store=store, phone=PHONE, amount="1000.00")
    placed = order(store_client, RewardItemFactory(points=300)).json()

    assert read(store_client, placed["id"]).json() == placed
    fulfilled = fulfil(store_client, placed["code"]).json()
    response = read(store_client, placed["id"])

    assert response.status_code == 200, response.content
    assert response.json() == fulfilled


def test_a_store_reads_no_order_it_did_not_place(store, store_client, other_store_client):
    earn(store=store, phone=PHONE, amount="1000.00")
    item = RewardItemFactory(points=300)
    at_the_store = order(store_client, item).json()
    in_the_app = my_order(customer_client(PHONE), item).json()

    assert_refused(read(other_store_client, at_the_store["id"]), 404, "not_found")
    assert_refused(read(store_client, in_the_app["id"]), 404, "not_found")


def test_any_store_previews_a_code_as_the_clerk_types_it_and_nothing_changes(
    store, store_client, other_store_client
):
    earn(store=store, phone=PHONE, amount="1000.00")
    placed = my_order(customer_client(PHONE), RewardItemFactory(points=300)).json()
    before = database_state()

    for typed in (
        placed["code"],
        placed["code"].lower(),
        f" {placed['code'][:4]}-{placed['code'][4:]} ",
    ):
        response = look_up(other_store_client, typed)
        assert response.status_code == 200, response.content
        assert response.json() == placed

    assert database_state() == before


def test_a_preview_shows_an_order_already_handed_over(store, store_client, other_store_client):
    earn(store=store, phone=PHONE, amount="1000.00")
    placed = order(store_client, RewardItemFactory(points=300)).json()
    assert fulfil(store_client, placed["code"]).status_code == 200

    response = look_up(other_store_client, placed["code"])

    assert response.status_code == 200, response.content
    assert response.json()["status"] == "fulfilled"


def test_a_preview_shows_the_open_order_of_a_code_that_came_back(store, store_client, monkeypatch):
    earn(store=store, phone=PHONE, amount="1000.00")
    item = RewardItemFactory(points=100)
    monkeypatch.setattr("catalog.services._new_code", lambda: "ACDEFHJK")
    closed = order(store_client, item).json()
    assert cancel(store_client, closed["id"]).status_code == 200
    reopened = order(store_client, item).json()
    assert reopened["code"] == closed["code"]

    response = look_up(store_client, "ACDEFHJK")

    assert response.json()["id"] == reopened["id"]


def test_previewing_an_unknown_code_is_not_found(store, store_client):
    earn(store=store, phone=PHONE, amount="1000.00")
    order(store_client, RewardItemFactory(points=300))

    assert_refused(look_up(store_client, "AAAAAAAA"), 404, "not_found")


@pytest.mark.parametrize("code", ["", "A" * 33, 34679347, None])
def test_previewing_a_malformed_code_is_a_validation_error(store_client, code):
    assert_refused(look_up(store_client, code), 400, "validation_error")


def test_reading_and_previewing_need_a_store_key(store, store_client):
    earn(store=store, phone=PHONE, amount="1000.00")
    placed = order(store_client, RewardItemFactory(points=300)).json()
    customer = customer_client(PHONE)

    for client in (APIClient(), customer):
        assert_refused(read(client, placed["id"]), 401, "not_authenticated")
        assert_refused(look_up(client, placed["code"]), 401, "not_authenticated")


# --- The customer's own orders ------------------------------------------------------


def test_a_customer_orders_for_themselves_and_cancels_while_pending(store):
    earn(store=store, phone=PHONE, amount="1000.00")
    original = lots()
    bag = RewardItemFactory(name="Canvas tote bag", points=300, cash_price="5.00", stock=2)
    customer = customer_client(PHONE)

    placed = my_order(customer, bag)

    assert placed.status_code == 201, placed.content
    body = placed.json()
    assert (body["status"], body["points"], body["cash_due"]) == ("pending", 300, "5.00")
    assert body["member"] == {"phone": PHONE, "balance": 700}
    assert RewardOrder.objects.get().store is None
    assert stock(bag) == 1

    cancelled = my_cancel(customer, body["id"])

    assert cancelled.status_code == 200, cancelled.content
    assert cancelled.json()["status"] == "cancelled"
    assert cancelled.json()["member"] == {"phone": PHONE, "balance": 1000}
    assert lots() == original
    assert stock(bag) == 2
    assert_ledger_consistent()


def test_a_customer_cannot_cancel_a_fulfilled_order(store, store_client):
    earn(store=store, phone=PHONE, amount="1000.00")
    customer = customer_client(PHONE)
    placed = my_order(customer, RewardItemFactory(points=300, stock=2)).json()
    assert fulfil(store_client, placed["code"]).status_code == 200
    before = database_state()

    assert_refused(my_cancel(customer, placed["id"]), 409, "invalid_state")

    assert database_state() == before
    assert_ledger_consistent()


def test_a_customer_cannot_cancel_another_customers_order(store, store_client):
    earn(store=store, phone=PHONE, amount="1000.00")
    earn(store=store, phone=OTHER_PHONE, amount="1000.00")
    item = RewardItemFactory(points=300, stock=5)
    theirs = my_order(customer_client(OTHER_PHONE), item).json()
    at_the_store = order(store_client, item, phone=OTHER_PHONE).json()
    before = database_state()
    customer = customer_client(PHONE)

    assert_refused(my_cancel(customer, theirs["id"]), 404, "not_found")
    assert_refused(my_cancel(customer, at_the_store["id"]), 404, "not_found")

    assert database_state()["orders"] == before["orders"]
    assert (balance(OTHER_PHONE), stock(item)) == (400, 3)
    assert_ledger_consistent()


def test_a_customer_lists_only_their_own_orders_newest_first(store, store_client):
    earn(store=store, phone=PHONE, amount="5000.00")
    earn(store=store, phone=OTHER_PHONE, amount="5000.00")
    item = RewardItemFactory(points=100)
    customer = customer_client(PHONE)
    in_app = my_order(customer, item).json()
    at_the_store = order(store_client, item).json()
    my_order(customer_client(OTHER_PHONE), item)
    order(store_client, item, phone=OTHER_PHONE)

    response = customer.get(MY_ORDERS_URL)

    assert response.status_code == 200
    body = response.json()
    assert [o["id"] for o in body["results"]] == [at_the_store["id"], in_app["id"]]
    assert body["results"][0]["member"] == {"phone": PHONE, "balance": 4800}
    assert body["next"] is None
    assert_ledger_consistent()


def test_a_new_customer_has_no_orders(store):
    assert customer_client(PHONE).get(MY_ORDERS_URL).json() == {"results": [], "next": None}


def test_the_customer_endpoints_need_a_customer_token(store, store_client):
    earn(store=store, phone=PHONE, amount="1000.00")
    item = RewardItemFactory(points=100)
    placed = order(store_client, item).json()
    before = database_state()

    for client in (APIClient(), store_client):
        assert client.get(MY_ORDERS_URL).status_code == 401
        assert my_order(client, item).status_code == 401
        assert my_cancel(client, placed["id"]).status_code == 401

    assert database_state() == before
    assert_ledger_consistent()


@pytest.mark.django_db(transaction=True)  # as in production: a request is not one transaction
def test_a_customer_without_a_member_yet_is_refused_for_want_of_points(store):
    # Given an account staff created, which has no points account yet
    User.objects.create_user(phone=PHONE, password=PASSWORD)
    api = APIClient()
    token = api.post("/api/v1/auth/token", {"phone": PHONE, "password": PASSWORD}, format="json")
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token.json()['access']}")
    api.raise_request_exception = False

    response = my_order(api, RewardItemFactory(points=100))

    assert_refused(response, 422, "insufficient_points")


# --- Bad input ----------------------------------------------------------------------

BAD_QUANTITIES = [
    pytest.param(0, id="zero"),
    pytest.param(21, id="21"),
    pytest.param(-1, id="negative"),
    pytest.param(10**30, id="huge"),
    pytest.param("1", id="string"),
    pytest.param(1.0, id="float-whole"),
    pytest.param(1.5, id="float"),
    pytest.param(True, id="bool"),
    pytest.param(None, id="null"),
    pytest.param([1], id="list"),
]

BAD_ITEM_IDS = [
    pytest.param("ITEM", id="string"),
    pytest.param("1", id="numeric-string"),
    pytest.param(1.0, id="float"),
    pytest.param(True, id="bool"),
    pytest.param(0, id="zero"),
    pytest.param(-1, id="negative"),
    pytest.param(10**18, id="too-large"),
    pytest.param(10**30, id="huge"),
    pytest.param(None, id="null"),
    pytest.param({"id": 1}, id="object"),
    pytest.param(MISSING, id="missing"),
]


def with_field(body: dict, field: str, value) -> dict:
    body = dict(body)
    if value is MISSING:
        del body[field]
    else:
        body[field] = value
    return body


@pytest.fixture
def shelf(store):
    earn(store=store, phone=PHONE, amount="100000.00")
    item = RewardItemFactory(pk=1, points=100, stock=50)
    return item, database_state()


@pytest.mark.parametrize("quantity", BAD_QUANTITIES)
def test_a_bad_quantity_is_a_validation_error(store_client, shelf, quantity):
    item, before = shelf
    body = {"phone": PHONE, "item_id": item.pk, "quantity": quantity}

    error = assert_refused(
        store_client.post(ORDER_URL, body, format="json"), 400, "validation_error"
    )

    assert set(error["details"]) == {"quantity"}
    assert database_state() == before


@pytest.mark.parametrize("item_id", BAD_ITEM_IDS)
def test_a_bad_item_id_is_a_validation_error(store_client, shelf, item_id):
    _item, before = shelf
    body = with_field({"phone": PHONE, "item_id": 1}, "item_id", item_id)

    error = assert_refused(
        store_client.post(ORDER_URL, body, format="json"), 400, "validation_error"
    )

    assert set(error["details"]) == {"item_id"}
    assert database_state() == before


def test_the_largest_item_id_is_simply_not_found(store_client, shelf):
    _item, before = shelf
    body = {"phone": PHONE, "item_id": 10**18 - 1}

    assert_refused(store_client.post(ORDER_URL, body, format="json"), 404, "not_found")
    assert database_state() == before


def test_the_quantity_defaults_to_one(store_client, shelf):
    item, _before = shelf

    response = store_client.post(ORDER_URL, {"phone": PHONE, "item_id": item.pk}, format="json")

    assert response.status_code == 201, response.content
    assert response.json()["quantity"] == 1
    assert_ledger_consistent()


@pytest.mark.parametrize("phone", ["12345", "", None, 13800138000, MISSING])
def test_a_bad_phone_is_invalid_phone(store_client, shelf, phone):
    item, before = shelf
    body = with_field({"phone": PHONE, "item_id": item.pk}, "phone", phone)

    assert_refused(store_client.post(ORDER_URL, body, format="json"), 400, "invalid_phone")
    assert database_state() == before


@pytest.mark.parametrize(
    "order_id",
    ["99999999999999999999", "999999999999999999", "9223372036854775808", "0", "-1", "x", "1.5"],
)
def test_an_absurd_order_id_is_not_found(store_client, shelf, order_id):
    customer = customer_client(PHONE)
    before = database_state()

    assert_refused(store_client.post(f"/api/v1/reward-orders/{order_id}/cancel"), 404, "not_found")
    assert_refused(customer.post(f"/api/v1/me/reward-orders/{order_id}/cancel"), 404, "not_found")
    assert database_state() == before


@pytest.mark.parametrize("body", ["[]", "null", "42", '{"item_id": 1,'])
def test_a_body_that_is_not_an_object_is_a_validation_error(store_client, shelf, body):
    _item, before = shelf

    response = store_client.post(ORDER_URL, body, content_type="application/json")

    assert_refused(response, 400, "validation_error")
    assert database_state() == before


def test_the_largest_cash_part_times_the_largest_quantity_is_kept_exactly(store, store_client):
    earn(store=store, phone=PHONE, amount="1000.00")
    item = RewardItemFactory(points=1, cash_price=Decimal("9999999999.99"))

    response = order(store_client, item, quantity=20)

    assert response.status_code == 201, response.content
    assert response.json()["cash_due"] == "199999999999.80"
    assert_ledger_consistent()
