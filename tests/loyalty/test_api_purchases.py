"""POST /api/v1/purchases, as a storefront sees it: points earned, replays, conflicts."""

from decimal import Decimal

import pytest

from loyalty.models import IdempotentRequest, LedgerEntry, Lot, Member, Program, Purchase
from tests.invariants import assert_ledger_consistent

URL = "/api/v1/purchases"
PHONE = "+8613800138000"
OTHER_PHONE = "+8613900139000"


def report(client, *, order_id="POS-1", amount="300.00", phone=PHONE, key=None):
    headers = {} if key is None else {"HTTP_IDEMPOTENCY_KEY": key}
    body = {"phone": phone, "order_id": order_id, "amount": amount}
    return client.post(URL, body, format="json", **headers)


def ledger_state():
    """What a retry must never change: every row that records points or purchases."""
    return {
        "members": list(Member.objects.order_by("pk").values_list("phone", "balance")),
        "purchases": list(Purchase.objects.order_by("pk").values_list("order_id", "amount")),
        "entries": list(LedgerEntry.objects.order_by("pk").values_list("kind", "points")),
        "lots": list(Lot.objects.order_by("pk").values_list("points", "remaining")),
    }


def set_earn_rate(rate: str):
    program = Program.current()
    program.earn_rate = Decimal(rate)
    program.save()


def test_first_purchase_creates_the_member_and_answers_in_e164(store_client, store):
    # Given a phone the program has never seen, sent in national format

    # When the store reports a purchase of 300.00
    response = report(store_client, phone="13800138000")

    # Then the member exists with 300 points and the answer shows the phone in E.164
    assert response.status_code == 201
    purchase = Purchase.objects.get()
    assert response.json() == {
        "purchase_id": purchase.pk,
        "order_id": "POS-1",
        "points_earned": 300,
        "member": {"phone": PHONE, "balance": 300},
    }
    member = Member.objects.get()
    assert (member.phone, member.balance, member.user) == (PHONE, 300, None)
    assert purchase.store == store
    entry = LedgerEntry.objects.get()
    assert (entry.kind, entry.points, entry.reference, entry.store) == ("earn", 300, "POS-1", store)
    assert_ledger_consistent()


def test_later_purchases_add_to_the_balance(store_client):
    # Given a member with 300 points
    report(store_client, order_id="POS-1", amount="300.00")

    # When the member buys again for 45.60
    response = report(store_client, order_id="POS-2", amount="45.60")

    # Then 45 more points are earned and the balance is 345
    assert response.status_code == 201
    assert response.json()["points_earned"] == 45
    assert response.json()["member"] == {"phone": PHONE, "balance": 345}
    assert Member.objects.get().balance == 345
    assert_ledger_consistent()


@pytest.mark.parametrize(
    ("earn_rate", "amount", "points"),
    [
        ("1", "300.50", 300),
        ("1", "1", 1),
        ("1", "1.5", 1),
        ("1", "9999999999.99", 9999999999),
        ("1.5", "10.01", 15),
        ("1.5", "10.00", 15),
        ("0.1", "19.99", 1),
        ("2.5", "0.40", 1),
    ],
)
def test_points_are_the_amount_times_the_rate_rounded_down(store_client, earn_rate, amount, points):
    # Given the program's earn rate
    set_earn_rate(earn_rate)

    # When a purchase is reported
    response = report(store_client, amount=amount)

    # Then floor(amount * rate) points are earned, and the rate is kept with the purchase
    assert response.status_code == 201
    assert response.json()["points_earned"] == points
    assert response.json()["member"]["balance"] == points
    purchase = Purchase.objects.get()
    assert purchase.earn_rate == Decimal(earn_rate)
    assert purchase.amount == Decimal(amount)
    assert_ledger_consistent()


@pytest.mark.parametrize("amount", ["0.99", "0.01"])
def test_a_purchase_too_small_to_earn_is_still_recorded(store_client, amount):
    # Given the default rate of 1 point per 1.00

    # When a purchase below 1.00 is reported
    response = report(store_client, amount=amount)

    # Then it is recorded with 0 points, the member exists, and no points moved
    assert response.status_code == 201
    assert response.json()["points_earned"] == 0
    assert response.json()["member"] == {"phone": PHONE, "balance": 0}
    purchase = Purchase.objects.get()
    assert (purchase.amount, purchase.points_earned, purchase.earn_entry) == (
        Decimal(amount),
        0,
        None,
    )
    assert LedgerEntry.objects.count() == 0
    assert Lot.objects.count() == 0

    # And a retry of it is still a replay, not a second purchase
    replay = report(store_client, amount=amount)
    assert replay.status_code == 200
    assert replay.json() == response.json()
    assert Purchase.objects.count() == 1
    assert_ledger_consistent()


@pytest.mark.parametrize("retry_phone", [PHONE, "13800138000", "+86 138 0013 8000"])
def test_the_same_order_again_replays_the_first_answer(store_client, retry_phone):
    # Given a reported purchase, and a later one that raised the balance
    first = report(store_client, order_id="POS-1", amount="300.00", phone="13800138000")
    report(store_client, order_id="POS-2", amount="50.00")
    before = ledger_state()

    # When the storefront retries the first order (phone written any valid way)
    replay = report(store_client, order_id="POS-1", amount="300.00", phone=retry_phone)

    # Then it gets 200 with exactly the first answer, and the points were credited once
    assert first.status_code == 201
    assert replay.status_code == 200
    assert replay.json() == first.json()
    assert replay.json()["member"]["balance"] == 300
    assert ledger_state() == before
    assert Member.objects.get().balance == 350
    assert_ledger_consistent()


@pytest.mark.parametrize(
    "changed",
    [{"amount": "300.01"}, {"amount": "30.00"}, {"phone": OTHER_PHONE}],
    ids=["amount-by-a-cent", "amount", "phone"],
)
def test_the_same_order_with_another_payload_is_a_conflict(store_client, changed):
    # Given a reported purchase
    report(store_client, order_id="POS-1", amount="300.00", phone=PHONE)
    before = ledger_state()

    # When the same order id comes with another amount or phone
    response = report(
        store_client, **{"order_id": "POS-1", "amount": "300.00", "phone": PHONE, **changed}
    )

    # Then it is refused with 409 and nothing changed
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "idempotency_conflict"
    assert response.json()["error"]["details"] == {"order_id": "POS-1"}
    assert response.json()["error"]["message"]
    assert ledger_state() == before
    assert_ledger_consistent()


def test_order_ids_are_per_store(store_client, other_store_client):
    # Given an order POS-1 reported by one store
    first = report(store_client, order_id="POS-1", amount="300.00")

    # When another store reports its own order POS-1 for the same phone
    second = report(other_store_client, order_id="POS-1", amount="20.00")

    # Then it is a separate purchase, and the member earns both
    assert second.status_code == 201
    assert second.json()["purchase_id"] != first.json()["purchase_id"]
    assert second.json()["member"] == {"phone": PHONE, "balance": 320}
    assert Purchase.objects.count() == 2
    assert_ledger_consistent()


def test_the_same_idempotency_key_and_body_replays_the_first_answer(store_client):
    # Given a purchase reported with an Idempotency-Key
    first = report(store_client, order_id="POS-1", key="key-1")
    report(store_client, order_id="POS-2", amount="10.00")
    before = ledger_state()

    # When the same request is retried with the same key
    replay = report(store_client, order_id="POS-1", key="key-1")

    # Then the first answer comes back with 200 and nothing moved
    assert first.status_code == 201
    assert replay.status_code == 200
    assert replay.json() == first.json()
    assert ledger_state() == before
    assert_ledger_consistent()


def test_the_same_idempotency_key_with_another_body_is_a_conflict(store_client):
    # Given a purchase reported with an Idempotency-Key
    report(store_client, order_id="POS-1", key="key-1")
    before = ledger_state()

    # When the key is reused for another order
    response = report(store_client, order_id="POS-2", amount="50.00", key="key-1")

    # Then it is refused with 409 and the other order is not recorded
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "idempotency_conflict"
    assert set(response.json()["error"]) == {"code", "message", "details"}
    assert ledger_state() == before
    assert not Purchase.objects.filter(order_id="POS-2").exists()


def test_idempotency_keys_are_per_store(store_client, other_store_client):
    # Given a store that used a key
    first = report(store_client, order_id="POS-1", amount="300.00", key="shared-key")

    # When another store sends the same key with the same body
    second = report(other_store_client, order_id="POS-1", amount="300.00", key="shared-key")

    # Then the other store's purchase is recorded on its own, not replayed
    assert second.status_code == 201
    assert second.json()["purchase_id"] != first.json()["purchase_id"]
    assert second.json()["member"]["balance"] == 600
    assert IdempotentRequest.objects.filter(key="shared-key").count() == 2
    assert_ledger_consistent()


def test_a_refused_request_does_not_use_up_its_idempotency_key(store_client):
    # Given a request with a key that was refused for a bad amount
    refused = report(store_client, amount="-1.00", key="key-1")
    assert refused.status_code == 400

    # When the storefront fixes the body and sends it with the same key
    response = report(store_client, amount="300.00", key="key-1")

    # Then it is recorded as a new purchase
    assert response.status_code == 201
    assert response.json()["points_earned"] == 300
    assert_ledger_consistent()


def test_an_order_id_replay_under_a_new_key_still_credits_once(store_client):
    # Given an order reported with one key
    first = report(store_client, order_id="POS-1", key="key-1")

    # When the storefront retries the order with a fresh key
    replay = report(store_client, order_id="POS-1", key="key-2")

    # Then the order id makes it a replay
    assert replay.status_code == 200
    assert replay.json() == first.json()
    assert Member.objects.get().balance == 300
    assert_ledger_consistent()


def test_a_key_of_255_visible_characters_is_accepted(store_client):
    response = report(store_client, key="k" * 254 + "~")

    assert response.status_code == 201


@pytest.mark.parametrize(
    "key", ["k" * 300, "k" * 256, "", "has space", "tab\there", "ключ"], ids=repr
)
def test_an_invalid_idempotency_key_is_refused(store_client, key):
    # Given no purchase yet

    # When a purchase comes with a key that is not 1 to 255 visible ASCII characters
    response = report(store_client, key=key)

    # Then it is a 400 and nothing is recorded
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_error"
    assert response.json()["error"]["details"] == {"Idempotency-Key": ["invalid"]}
    assert Purchase.objects.count() == 0
    assert Member.objects.count() == 0
    assert IdempotentRequest.objects.count() == 0
