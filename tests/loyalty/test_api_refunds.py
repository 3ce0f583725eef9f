"""POST /api/v1/purchases/{order_id}/refunds: the points a refunded amount earned come back."""

from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.db import transaction

from loyalty.models import LedgerEntry, Lot, Member, Program, Purchase, Refund
from loyalty.services.points import Cause, debit, member_lock
from tests.invariants import assert_ledger_consistent

PHONE = "+8613800138000"
SHANGHAI = ZoneInfo("Asia/Shanghai")


def buy(client, *, order_id="POS-1", amount="100.00", phone=PHONE):
    response = client.post(
        "/api/v1/purchases",
        {"phone": phone, "order_id": order_id, "amount": amount},
        format="json",
    )
    assert response.status_code == 201, response.json()
    return response.json()


def refund(client, *, order_id="POS-1", refund_id="R-1", amount="10.00", key=None):
    headers = {} if key is None else {"HTTP_IDEMPOTENCY_KEY": key}
    return client.post(
        f"/api/v1/purchases/{order_id}/refunds",
        {"refund_id": refund_id, "amount": amount},
        format="json",
        **headers,
    )


def lookup(client, phone=PHONE):
    response = client.post("/api/v1/members/lookup", {"phone": phone}, format="json")
    assert response.status_code == 200, response.json()
    return response.json()


def ledger_state():
    return {
        "balances": list(Member.objects.order_by("pk").values_list("balance", flat=True)),
        "purchases": list(
            Purchase.objects.order_by("pk").values_list("refunded_amount", "points_reversed")
        ),
        "refunds": list(Refund.objects.order_by("pk").values_list("refund_id", "amount")),
        "entries": LedgerEntry.objects.count(),
        "lots": list(Lot.objects.order_by("pk").values_list("remaining", flat=True)),
    }


def set_earn_rate(rate: str):
    program = Program.current()
    program.earn_rate = Decimal(rate)
    program.save()


def spend(points: int):
    """The member spends points outside these endpoints (a checkout discount)."""
    with transaction.atomic():
        member = member_lock(Member.objects.get(phone=PHONE).pk)
        debit(
            member=member, kind=LedgerEntry.Kind.REDEEM, points=points, cause=Cause(reference="X")
        )


def test_a_refund_takes_back_the_points_it_earned(store_client, store):
    # Given a purchase of 300.00 that earned 300 points
    buy(store_client, amount="300.00")

    # When 100.00 of it is refunded
    response = refund(store_client, refund_id="R-1", amount="100.00")

    # Then 100 points are reversed and the member keeps 200
    assert response.status_code == 201
    assert response.json() == {
        "refund_id": "R-1",
        "amount": "100.00",
        "points_reversed": 100,
        "lines": [],
        "member": {"phone": PHONE, "balance": 200},
    }
    entry = LedgerEntry.objects.latest("pk")
    assert (entry.kind, entry.points, entry.reference, entry.store) == (
        "earn_reversal",
        -100,
        "POS-1/R-1",
        store,
    )
    purchase = Purchase.objects.get()
    assert (purchase.refunded_amount, purchase.points_reversed) == (Decimal("100.00"), 100)
    assert_ledger_consistent()


def test_refunds_in_parts_add_up_to_exactly_what_was_earned(store_client):
    # Given a purchase of 100.00 that earned 100 points at rate 1
    buy(store_client, amount="100.00")

    # When it is refunded in three parts
    answers = [
        refund(store_client, refund_id=f"R-{n}", amount=amount)
        for n, amount in enumerate(["33.33", "33.33", "33.34"], start=1)
    ]

    # Then 33, 33 and 34 points come back and the member ends at 0
    assert [a.status_code for a in answers] == [201, 201, 201]
    assert [a.json()["points_reversed"] for a in answers] == [33, 33, 34]
    assert [a.json()["member"]["balance"] for a in answers] == [67, 34, 0]
    purchase = Purchase.objects.get()
    assert (purchase.refunded_amount, purchase.points_reversed) == (Decimal("100.00"), 100)
    assert_ledger_consistent()


def test_reversal_rounds_on_the_total_refunded_not_on_each_refund(store_client):
    # Given a purchase of 100.00 that earned 100 points
    buy(store_client, amount="100.00")

    # When two refunds of 0.50 come in
    first = refund(store_client, refund_id="R-1", amount="0.50")
    second = refund(store_client, refund_id="R-2", amount="0.50")

    # Then the first reverses nothing and the second the 1 point that 1.00 earned
    assert first.status_code == 201
    assert first.json() == {
        "refund_id": "R-1",
        "amount": "0.50",
        "points_reversed": 0,
        "lines": [],
        "member": {"phone": PHONE, "balance": 100},
    }
    assert second.json()["points_reversed"] == 1
    assert second.json()["member"]["balance"] == 99
    assert LedgerEntry.objects.filter(kind="earn_reversal").count() == 1
    assert_ledger_consistent()


def test_a_refund_uses_the_earn_rate_of_the_purchase(store_client):
    # Given a purchase of 10.01 at rate 1.5 (15 points), then staff change the rate to 3
    set_earn_rate("1.5")
    assert buy(store_client, amount="10.01")["points_earned"] == 15
    set_earn_rate("3")

    # When the purchase is refunded in two parts
    first = refund(store_client, refund_id="R-1", amount="5.00")
    second = refund(store_client, refund_id="R-2", amount="5.01")

    # Then the reversals follow rate 1.5: floor(7.5) = 7, then 15 - 7 = 8
    assert first.json()["points_reversed"] == 7
    assert second.json()["points_reversed"] == 8
    assert second.json()["member"]["balance"] == 0
    assert_ledger_consistent()


def test_a_refund_after_a_rate_increase_never_takes_more_than_was_earned(store_client):
    # Given a purchase of 100.00 at rate 1, then the rate doubles
    buy(store_client, order_id="POS-1", amount="100.00")
    set_earn_rate("2")
    buy(store_client, order_id="POS-2", amount="100.00")

    # When the first purchase is refunded in full
    response = refund(store_client, order_id="POS-1", amount="100.00")

    # Then only its 100 points come back; the second purchase's 200 stay
    assert response.json()["points_reversed"] == 100
    assert response.json()["member"]["balance"] == 200
    assert_ledger_consistent()


def test_a_refund_of_a_purchase_that_earned_nothing_reverses_nothing(store_client):
    # Given a purchase of 0.99 that earned 0 points
    buy(store_client, amount="0.99")

    # When it is refunded in full
    response = refund(store_client, amount="0.99")

    # Then the refund is recorded and no points move
    assert response.status_code == 201
    assert response.json() == {
        "refund_id": "R-1",
        "amount": "0.99",
        "points_reversed": 0,
        "lines": [],
        "member": {"phone": PHONE, "balance": 0},
    }
    assert Refund.objects.get().amount == Decimal("0.99")
    assert LedgerEntry.objects.count() == 0
    assert_ledger_consistent()


def test_a_refund_beyond_what_is_left_is_refused_and_changes_nothing(store_client):
    # Given a purchase of 300.00 of which 250.00 was refunded
    buy(store_client, amount="300.00")
    refund(store_client, refund_id="R-1", amount="250.00")
    before = ledger_state()

    # When a refund of 50.01 comes in
    response = refund(store_client, refund_id="R-2", amount="50.01")

    # Then it is refused with the amounts a clerk needs, and nothing changed
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "refund_exceeds_purchase"
    assert response.json()["error"]["details"] == {
        "purchase_amount": "300.00",
        "refunded_amount": "250.00",
        "refundable_amount": "50.00",
    }
    assert response.json()["error"]["message"]
    assert ledger_state() == before

    # And exactly what is left can still be refunded under the same refund id
    response = refund(store_client, refund_id="R-2", amount="50.00")
    assert response.status_code == 201
    assert response.json()["member"]["balance"] == 0
    assert_ledger_consistent()


def test_a_single_refund_larger_than_the_purchase_is_refused(store_client):
    buy(store_client, amount="100.00")
    before = ledger_state()

    response = refund(store_client, amount="100.01")

    assert response.status_code == 422
    assert response.json()["error"]["details"]["refundable_amount"] == "100.00"
    assert ledger_state() == before


def test_a_refund_of_an_unknown_order_is_not_found(store_client):
    # Given a store with one purchase
    buy(store_client, order_id="POS-1")
    before = ledger_state()

    # When it refunds an order it never reported
    response = refund(store_client, order_id="POS-404")

    # Then it gets 404 in the error shape
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert response.json()["error"]["details"] == {}
    assert ledger_state() == before


def test_a_store_cannot_refund_another_stores_order(store_client, other_store_client):
    # Given an order reported by one store
    buy(store_client, order_id="POS-1", amount="100.00")
    before = ledger_state()

    # When another store tries to refund it
    response = refund(other_store_client, order_id="POS-1", amount="100.00")

    # Then the order does not exist for that store and no points move
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert ledger_state() == before

    # And the store that reported it still can
    assert refund(store_client, order_id="POS-1", amount="100.00").status_code == 201
    assert_ledger_consistent()


def test_each_store_refunds_its_own_order_of_the_same_id(store_client, other_store_client):
    # Given two stores that each reported an order POS-1 for the same member
    buy(store_client, order_id="POS-1", amount="100.00")
    buy(other_store_client, order_id="POS-1", amount="40.00")

    # When the second store refunds its POS-1 in full
    response = refund(other_store_client, order_id="POS-1", amount="40.00")

    # Then only its 40 points are reversed
    assert response.json()["points_reversed"] == 40
    assert response.json()["member"]["balance"] == 100
    first_store_purchase = Purchase.objects.get(amount=Decimal("100.00"))
    assert first_store_purchase.refunded_amount == 0
    assert_ledger_consistent()


def test_the_same_refund_again_replays_the_first_answer(store_client):
    # Given a refund, and a purchase after it that changed the balance
    buy(store_client, order_id="POS-1", amount="100.00")
    first = refund(store_client, refund_id="R-1", amount="40.00")
    buy(store_client, order_id="POS-2", amount="5.00")
    before = ledger_state()

    # When the storefront retries the refund
    replay = refund(store_client, refund_id="R-1", amount="40.00")

    # Then it gets 200 with the first answer and the points were reversed once
    assert first.status_code == 201
    assert replay.status_code == 200
    assert replay.json() == first.json()
    assert first.json() == {
        "refund_id": "R-1",
        "amount": "40.00",
        "points_reversed": 40,
        "lines": [],
        "member": {"phone": PHONE, "balance": 60},
    }
    assert ledger_state() == before
    assert Member.objects.get().balance == 65
    assert_ledger_consistent()


def test_a_retry_of_the_refund_that_emptied_the_purchase_is_a_replay_not_a_refusal(store_client):
    # Given a purchase refunded in full
    buy(store_client, amount="100.00")
    first = refund(store_client, refund_id="R-1", amount="100.00")

    # When that refund is retried
    replay = refund(store_client, refund_id="R-1", amount="100.00")

    # Then it is answered as a replay, not as exceeding the purchase
    assert replay.status_code == 200
    assert replay.json() == first.json()
    assert_ledger_consistent()


def test_the_same_refund_id_with_another_amount_is_a_conflict(store_client):
    # Given a refund R-1 of 40.00
    buy(store_client, amount="100.00")
    refund(store_client, refund_id="R-1", amount="40.00")
    before = ledger_state()

    # When R-1 comes again with another amount
    response = refund(store_client, refund_id="R-1", amount="30.00")

    # Then it is refused with 409 and nothing changed
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "idempotency_conflict"
    assert response.json()["error"]["details"] == {"refund_id": "R-1"}
    assert ledger_state() == before


def test_refund_ids_are_per_purchase(store_client):
    # Given two purchases
    buy(store_client, order_id="POS-1", amount="100.00")
    buy(store_client, order_id="POS-2", amount="50.00")

    # When each gets a refund with the id R-1
    first = refund(store_client, order_id="POS-1", refund_id="R-1", amount="10.00")
    second = refund(store_client, order_id="POS-2", refund_id="R-1", amount="10.00")

    # Then both are recorded
    assert (first.status_code, second.status_code) == (201, 201)
    assert second.json()["member"]["balance"] == 130
    assert Refund.objects.count() == 2
    assert_ledger_consistent()


def test_the_same_idempotency_key_and_body_replays_the_refund(store_client):
    buy(store_client, amount="100.00")
    first = refund(store_client, refund_id="R-1", amount="10.00", key="refund-key")
    before = ledger_state()

    replay = refund(store_client, refund_id="R-1", amount="10.00", key="refund-key")

    assert replay.status_code == 200
    assert replay.json() == first.json()
    assert ledger_state() == before


def test_the_same_idempotency_key_with_another_refund_is_a_conflict(store_client):
    # Given a refund sent with a key
    buy(store_client, amount="100.00")
    refund(store_client, refund_id="R-1", amount="10.00", key="refund-key")
    before = ledger_state()

    # When the key is reused for another refund
    response = refund(store_client, refund_id="R-2", amount="10.00", key="refund-key")

    # Then it is refused and R-2 is not recorded
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "idempotency_conflict"
    assert ledger_state() == before


def test_a_key_used_for_a_purchase_cannot_be_reused_for_a_refund(store_client):
    # Given a purchase sent with a key
    response = store_client.post(
        "/api/v1/purchases",
        {"phone": PHONE, "order_id": "POS-1", "amount": "100.00"},
        format="json",
        HTTP_IDEMPOTENCY_KEY="one-key",
    )
    assert response.status_code == 201

    # When the same key comes with a refund
    response = refund(store_client, amount="10.00", key="one-key")

    # Then it is a conflict, not a replay of the purchase's answer
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "idempotency_conflict"
    assert Refund.objects.count() == 0


def test_a_refund_of_spent_points_leaves_a_debt_that_the_next_purchases_pay_first(store_client):
    # Given a member who earned 100 points on POS-1 and spent 80 of them
    buy(store_client, order_id="POS-1", amount="100.00")
    spend(80)

    # When POS-1 is refunded in full
    response = refund(store_client, order_id="POS-1", amount="100.00")

    # Then all 100 points are reversed and the balance goes to -80 with nothing expiring
    assert response.status_code == 201
    assert response.json() == {
        "refund_id": "R-1",
        "amount": "100.00",
        "points_reversed": 100,
        "lines": [],
        "member": {"phone": PHONE, "balance": -80},
    }
    assert lookup(store_client)["balance"] == -80
    assert lookup(store_client)["expiring"] == []
    assert_ledger_consistent()

    # When the member buys for 50.00: the 50 points pay part of the debt
    assert buy(store_client, order_id="POS-2", amount="50.00")["member"]["balance"] == -30
    assert lookup(store_client)["expiring"] == []

    # And when the member buys for 100.00: 30 pay the rest, 70 become spendable
    assert buy(store_client, order_id="POS-3", amount="100.00")["member"]["balance"] == 70
    member = lookup(store_client)
    assert member["balance"] == 70
    assert [e["points"] for e in member["expiring"]] == [70]

    # And the ledger tells the whole story
    entries = LedgerEntry.objects.order_by("pk").values_list("kind", "points", "balance_after")
    assert list(entries) == [
        ("earn", 100, 100),
        ("redeem", -80, 20),
        ("earn_reversal", -100, -80),
        ("earn", 50, -30),
        ("earn", 100, 70),
    ]
    lots = Lot.objects.order_by("pk").values_list("entry__reference", "points", "remaining")
    assert list(lots) == [("POS-1", 100, 0), ("POS-3", 70, 70)]
    assert_ledger_consistent()


def test_a_refund_takes_points_from_its_own_purchase_first(store_client):
    # Given 100 points earned in July and 50 in August (expiring a month later)
    with time_machine.travel(datetime(2026, 7, 6, 10, 0, tzinfo=SHANGHAI), tick=False):
        buy(store_client, order_id="POS-JUL", amount="100.00")
    with time_machine.travel(datetime(2026, 8, 6, 10, 0, tzinfo=SHANGHAI), tick=False):
        buy(store_client, order_id="POS-AUG", amount="50.00")

        # When the August purchase is refunded by 20.00
        response = refund(store_client, order_id="POS-AUG", amount="20.00")

        # Then the 20 points come out of the August points, not the sooner-expiring July ones
        assert response.json()["member"]["balance"] == 130
        assert lookup(store_client)["expiring"] == [
            {"points": 100, "expires_at": "2027-08-01T00:00:00+08:00"},
            {"points": 30, "expires_at": "2027-09-01T00:00:00+08:00"},
        ]
    assert_ledger_consistent()


@pytest.mark.parametrize("order_id", ["POS-1", "pos.1:a_b-C"])
def test_order_ids_with_every_allowed_character_can_be_refunded(store_client, order_id):
    buy(store_client, order_id=order_id, amount="10.00")

    response = refund(store_client, order_id=order_id, amount="10.00")

    assert response.status_code == 201
    assert response.json()["member"]["balance"] == 0
    assert_ledger_consistent()
