"""A purchase may carry its basket: lines that add up to the amount, each with its own
id, kept with the purchase; a retry must send the same basket, and a wrong one is
refused whole, with nothing written."""

from decimal import Decimal

import pytest

from loyalty.models import LedgerEntry, Member, Purchase, PurchaseLine
from loyalty.services.purchases import BasketLine, purchase_record
from tests.concurrency import run_together
from tests.invariants import assert_ledger_consistent

URL = "/api/v1/purchases"
PHONE = "+8613800138000"
COFFEE = {"line_id": "1", "sku": "COFFEE-L", "category": "coffee", "quantity": 2, "amount": "60.00"}
BEANS = {"line_id": "2", "sku": "BEANS-1KG", "category": "beans", "quantity": 1, "amount": "240.00"}


def report(client, lines, *, amount="300.00", order_id="POS-1"):
    body = {"phone": PHONE, "order_id": order_id, "amount": amount, "lines": lines}
    return client.post(URL, body, format="json")


def written():
    """Every row an earn writes; a refused report changes none of them."""
    return (
        list(Member.objects.values_list("phone", "balance")),
        list(Purchase.objects.values_list("order_id", "amount", "points_earned")),
        list(PurchaseLine.objects.values_list("line_id", "amount")),
        LedgerEntry.objects.count(),
    )


def stored_lines():
    return list(
        PurchaseLine.objects.order_by("id").values_list(
            "purchase__order_id", "line_id", "sku", "category", "quantity", "amount"
        )
    )


def test_the_basket_is_kept_with_the_purchase_in_the_order_sent(store_client):
    response = report(store_client, [BEANS, COFFEE])

    assert response.status_code == 201
    assert response.json()["points_earned"] == 300
    assert stored_lines() == [
        ("POS-1", "2", "BEANS-1KG", "beans", 1, Decimal("240.00")),
        ("POS-1", "1", "COFFEE-L", "coffee", 2, Decimal("60.00")),
    ]
    assert_ledger_consistent()


def test_a_free_line_and_a_line_without_a_category_are_taken(store_client):
    gift = {"line_id": "gift", "sku": "MUG", "quantity": 1, "amount": "0.00"}

    response = report(store_client, [COFFEE, gift], amount="60.00")

    assert response.status_code == 201
    assert stored_lines()[1] == ("POS-1", "gift", "MUG", "", 1, Decimal("0.00"))


def test_a_purchase_without_lines_works_as_before(store_client):
    body = {"phone": PHONE, "order_id": "POS-1", "amount": "300.00"}

    response = store_client.post(URL, body, format="json")

    assert response.status_code == 201
    assert response.json()["points_earned"] == 300
    assert stored_lines() == []


def test_lines_that_do_not_add_up_to_the_amount_are_refused_and_nothing_is_written(
    store_client,
):
    before = written()

    response = report(store_client, [COFFEE, BEANS], amount="300.01")

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert error["details"]["lines"] == [
        "The lines add up to 300.00, not to the purchase's amount 300.01."
    ]
    assert written() == before


def test_two_lines_with_one_id_are_refused(store_client):
    before = written()

    response = report(store_client, [COFFEE, {**BEANS, "line_id": "1"}])

    assert response.status_code == 400
    assert response.json()["error"]["details"]["lines"] == [
        "Each line needs its own line_id: 1 is there twice."
    ]
    assert written() == before


@pytest.mark.parametrize(
    "field, value",
    [
        ("quantity", 0),
        ("quantity", 1_000_001),
        ("quantity", "2"),
        ("quantity", True),
        ("quantity", 1.5),
        ("amount", "-1.00"),
        ("amount", "60.001"),
        ("amount", 60),
        ("amount", "10000000000.00"),
        ("sku", ""),
        ("sku", "COFFEE L"),
        ("sku", "S" * 65),
        ("sku", None),
        ("category", "咖啡"),
        ("line_id", "1\x00"),
    ],
)
def test_a_line_outside_its_bounds_is_refused(store_client, field, value):
    before = written()

    response = report(store_client, [{**COFFEE, field: value}], amount="60.00")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_error"
    assert "lines" in response.json()["error"]["details"]
    assert written() == before


@pytest.mark.parametrize("missing", ["line_id", "sku", "quantity", "amount"])
def test_a_line_missing_a_field_is_refused(store_client, missing):
    line = {name: value for name, value in COFFEE.items() if name != missing}

    response = report(store_client, [line], amount="60.00")

    assert response.status_code == 400
    assert written()[1] == []


@pytest.mark.parametrize(
    "lines, message",
    [
        ([], "Send at least one line, or leave the lines out."),
        (
            [{**COFFEE, "line_id": str(n), "amount": "1.00"} for n in range(201)],
            "Send at most 200 lines.",
        ),
        ("COFFEE", "Send the basket's lines as a list of objects."),
        ({}, "Send the basket's lines as a list of objects."),
    ],
    ids=["none", "201 lines", "a string", "an object"],
)
def test_a_basket_of_no_lines_or_too_many_is_refused_saying_so(store_client, lines, message):
    response = report(store_client, lines, amount="201.00")

    assert response.status_code == 400
    assert response.json()["error"]["details"]["lines"] == [message]
    assert written()[1] == []


def test_the_same_basket_again_is_a_replay(store_client):
    first = report(store_client, [COFFEE, BEANS])

    again = report(store_client, [COFFEE, BEANS])

    assert again.status_code == 200
    assert again.json() == first.json()
    assert len(stored_lines()) == 2
    assert_ledger_consistent()


@pytest.mark.parametrize(
    "second",
    [
        pytest.param([BEANS, COFFEE], id="lines in another order"),
        pytest.param([{**COFFEE, "amount": "70.00"}, {**BEANS, "amount": "230.00"}], id="split"),
        pytest.param([{**COFFEE, "sku": "TEA"}, BEANS], id="another item"),
        pytest.param(None, id="no basket"),
    ],
)
def test_the_same_order_with_another_basket_is_a_conflict(store_client, second):
    report(store_client, [COFFEE, BEANS])
    before = written()

    body = {"phone": PHONE, "order_id": "POS-1", "amount": "300.00"}
    if second is not None:
        body["lines"] = second
    response = store_client.post(URL, body, format="json")

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "idempotency_conflict"
    assert written() == before


def test_an_order_reported_without_a_basket_conflicts_with_one_sent_later(store_client):
    store_client.post(URL, {"phone": PHONE, "order_id": "POS-1", "amount": "300.00"}, format="json")

    response = report(store_client, [COFFEE, BEANS])

    assert response.status_code == 409


@pytest.mark.django_db(transaction=True)
def test_two_tills_racing_with_different_baskets_for_one_order_record_one(store):
    def reporting(lines):
        return lambda: purchase_record(
            store=store, phone=PHONE, order_id="POS-1", amount=Decimal("300.00"), lines=lines
        )

    coffee_first = [BasketLine("1", "COFFEE-L", "coffee", 2, Decimal("60.00"))]
    coffee_first.append(BasketLine("2", "BEANS-1KG", "beans", 1, Decimal("240.00")))
    one_line = [BasketLine("1", "BEANS-3KG", "beans", 1, Decimal("300.00"))]

    results = run_together([reporting(coffee_first), reporting(one_line)] * 3)

    created = [result for result in results if not hasattr(result, "code") and result.created]
    refused = [result for result in results if hasattr(result, "code")]
    assert len(created) == 1
    assert {refusal.code for refusal in refused} == {"idempotency_conflict"}
    assert Purchase.objects.count() == 1
    assert PurchaseLine.objects.count() in (1, 2)
    assert_ledger_consistent()
