"""Refunds by line: a storefront names the lines of the basket refunded, by units or by
money, and gets back exactly what those lines earned, in proportion, never more; partial
refunds add up to the whole, the purchase's bonus and the member's use of a promotion
come back with the refund that completes it, and a wrong request changes nothing."""

import random
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine

from loyalty.management.commands.seed_demo import weekends_double_except_tobacco
from loyalty.models import (
    EarningRule,
    EarnPart,
    Member,
    Program,
    Purchase,
    PurchaseLine,
    Refund,
    RuleUse,
)
from loyalty.services.promotions import earning_rules_changed
from tests.invariants import assert_ledger_consistent

SATURDAY = datetime(2026, 7, 4, 11, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
PURCHASE_URL = "/api/v1/purchases"
PHONE = "+8613800138000"
COFFEE = {"line_id": "1", "sku": "COFFEE-L", "category": "coffee", "quantity": 2, "amount": "60.00"}
BEANS = {"line_id": "2", "sku": "BEANS-1KG", "category": "beans", "quantity": 1, "amount": "240.00"}
CIGARETTES = {
    "line_id": "3",
    "sku": "CIG-20",
    "category": "tobacco",
    "quantity": 1,
    "amount": "50.00",
}
BASKET = [COFFEE, BEANS, CIGARETTES]


@pytest.fixture
def weekends_at_the_shop(store):
    return weekends_double_except_tobacco(store)


def buy(client, lines=BASKET, *, order_id="POS-1"):
    amount = sum(Decimal(line["amount"]) for line in lines)
    body = {"phone": PHONE, "order_id": order_id, "amount": f"{amount:.2f}", "lines": lines}
    with time_machine.travel(SATURDAY, tick=False):
        response = client.post(PURCHASE_URL, body, format="json")
    assert response.status_code == 201, response.json()
    return response.json()


def refund(client, refund_id, *, lines=None, amount=None, order_id="POS-1"):
    body = {"refund_id": refund_id}
    if lines is not None:
        body["lines"] = lines
    if amount is not None:
        body["amount"] = amount
    with time_machine.travel(SATURDAY, tick=False):
        return client.post(f"{PURCHASE_URL}/{order_id}/refunds", body, format="json")


def balance() -> int:
    return Member.objects.get(phone=PHONE).balance


def test_returning_one_coffee_takes_back_exactly_what_it_earned(store_client, weekends_at_the_shop):
    earned = buy(store_client)

    response = refund(store_client, "R-1", lines=[{"line_id": "1", "quantity": 1}])

    # Two coffees for 60.00 earned 60 at the base rate and 60 more doubled: one is 60.
    assert earned["points_earned"] == 600
    assert response.status_code == 201
    assert response.json() == {
        "refund_id": "R-1",
        "amount": "30.00",
        "points_reversed": 60,
        "lines": [{"line_id": "1", "quantity": 1, "amount": "30.00", "points_reversed": 60}],
        "member": {"phone": PHONE, "balance": 540},
    }
    assert_ledger_consistent()


def test_units_refunded_one_by_one_add_up_to_the_line_to_the_cent_and_the_point(
    store_client,
):
    EarningRule.objects.create(
        name_en="Half as much again", name_zh="积分1.5倍", kind="multiplier", multiplier="1.5"
    )
    earning_rules_changed()
    client = store_client
    three_cups = {**COFFEE, "quantity": 3, "amount": "10.00"}
    buy(client, [three_cups, BEANS])

    refunds = [
        refund(client, f"R-{n}", lines=[{"line_id": "1", "quantity": 1}]).json() for n in range(3)
    ]

    # The cups earned 10 + 5 = 15: a third of 10.00 is 3.33, then 6.67, then all of it.
    assert [body["amount"] for body in refunds] == ["3.33", "3.34", "3.33"]
    assert [body["points_reversed"] for body in refunds] == [4, 6, 5]
    line = PurchaseLine.objects.get(line_id="1")
    assert (line.refunded_quantity, line.refunded_amount, line.points_reversed) == (
        3,
        Decimal("10.00"),
        15,
    )
    assert balance() == 375 - 15
    assert_ledger_consistent()


def test_money_of_a_line_and_its_units_can_be_refunded_in_turn(store_client, weekends_at_the_shop):
    buy(store_client)

    goodwill = refund(store_client, "R-1", lines=[{"line_id": "2", "amount": "40.00"}])
    returned = refund(store_client, "R-2", lines=[{"line_id": "2", "quantity": 1}])

    # Beans for 240.00 earned 480: 40.00 of it is 80, the rest of the line the other 400.
    assert goodwill.json()["points_reversed"] == 80
    assert (returned.json()["amount"], returned.json()["points_reversed"]) == ("200.00", 400)
    assert balance() == 600 - 480


def test_the_refund_that_completes_the_purchase_gives_back_its_bonus_and_the_members_use(
    store_client, store, weekends_at_the_shop
):
    EarningRule.objects.create(
        name_en="200 points over 300.00",
        name_zh="满300送200积分",
        kind="bonus",
        bonus_points=200,
        minimum_spend=Decimal("300.00"),
    )
    Program.objects.update(promotion_stacking="all")
    earning_rules_changed()
    assert buy(store_client)["points_earned"] == 800

    beans_and_coffee = refund(
        store_client,
        "R-1",
        lines=[{"line_id": "1", "quantity": 2}, {"line_id": "2", "quantity": 1}],
    )
    assert RuleUse.objects.get().uses == 1
    tobacco = refund(store_client, "R-2", lines=[{"line_id": "3", "quantity": 1}])

    assert beans_and_coffee.json()["points_reversed"] == 600
    # The tobacco earned nothing, but its return completes the order: the bonus goes back.
    assert tobacco.json()["points_reversed"] == 200
    assert tobacco.json()["lines"][0]["points_reversed"] == 0
    assert balance() == 0
    assert RuleUse.objects.get().uses == 0
    assert_ledger_consistent()


def test_lines_of_a_purchase_earned_at_the_flat_rate_give_back_their_share(store_client):
    halves = [
        {**COFFEE, "quantity": 1, "amount": "0.50"},
        {**BEANS, "amount": "0.50"},
        {**CIGARETTES, "amount": "1.00"},
    ]
    buy(store_client, halves)

    first = refund(store_client, "R-1", lines=[{"line_id": "1", "quantity": 1}])
    second = refund(store_client, "R-2", lines=[{"line_id": "2", "quantity": 1}])
    third = refund(store_client, "R-3", lines=[{"line_id": "3", "quantity": 1}])

    # 2.00 earned 2 points, dealt as the rules deal them: the 1.00 line 1, then the half
    # listed first the point left.
    assert [body.json()["points_reversed"] for body in (first, second, third)] == [1, 0, 1]
    assert balance() == 0


def test_a_retried_line_refund_is_answered_again_and_another_is_a_conflict(
    store_client, weekends_at_the_shop
):
    buy(store_client)
    lines = [{"line_id": "1", "quantity": 1}]
    first = refund(store_client, "R-1", lines=lines)

    again = refund(store_client, "R-1", lines=lines, amount="30.00")
    other = refund(store_client, "R-1", lines=[{"line_id": "1", "amount": "30.00"}])

    assert (again.status_code, again.json()) == (200, first.json())
    assert other.status_code == 409
    assert other.json()["error"]["code"] == "idempotency_conflict"
    assert Refund.objects.count() == 1
    assert balance() == 540


def written():
    """What a refund changes; a refused one changes none of it."""
    return (
        balance(),
        list(Purchase.objects.values_list("refunded_amount", "points_reversed")),
        list(
            PurchaseLine.objects.order_by("id").values_list(
                "refunded_quantity", "refunded_amount", "points_reversed"
            )
        ),
        Refund.objects.count(),
    )


@pytest.mark.parametrize(
    ("lines", "amount", "status", "code"),
    [
        ([{"line_id": "9", "quantity": 1}], None, 422, "unknown_line"),
        ([{"line_id": "1", "quantity": 3}], None, 422, "refund_exceeds_line"),
        ([{"line_id": "1", "amount": "60.01"}], None, 422, "refund_exceeds_line"),
        ([{"line_id": "1", "quantity": 1, "amount": "30.00"}], None, 400, "validation_error"),
        ([{"line_id": "1"}], None, 400, "validation_error"),
        ([{"line_id": "1", "quantity": 0}], None, 400, "validation_error"),
        ([{"line_id": "1", "amount": "0.00"}], None, 400, "validation_error"),
        (
            [{"line_id": "1", "quantity": 1}, {"line_id": "1", "quantity": 1}],
            None,
            400,
            "validation_error",
        ),
        ([{"line_id": "1", "quantity": 1}], "29.99", 400, "validation_error"),
        ([], None, 400, "validation_error"),
        (None, None, 400, "validation_error"),
        ("1", None, 400, "validation_error"),
    ],
)
def test_a_wrong_line_refund_is_refused_and_changes_nothing(
    store_client, weekends_at_the_shop, lines, amount, status, code
):
    buy(store_client)
    before = written()

    response = refund(store_client, "R-1", lines=lines, amount=amount)

    assert response.status_code == status, response.json()
    assert response.json()["error"]["code"] == code
    assert written() == before


def test_the_details_of_a_line_refunded_too_far_say_what_is_left(
    store_client, weekends_at_the_shop
):
    buy(store_client)
    refund(store_client, "R-1", lines=[{"line_id": "1", "quantity": 1}])

    response = refund(store_client, "R-2", lines=[{"line_id": "1", "quantity": 2}])

    assert response.json()["error"]["details"] == {
        "line_id": "1",
        "quantity": 2,
        "refunded_quantity": 1,
        "amount": "60.00",
        "refunded_amount": "30.00",
        "refundable_amount": "30.00",
    }


def test_a_line_with_no_money_left_is_no_refund(store_client, weekends_at_the_shop):
    buy(store_client)
    refund(store_client, "R-1", lines=[{"line_id": "1", "amount": "60.00"}])
    before = written()

    units = refund(store_client, "R-2", lines=[{"line_id": "1", "quantity": 2}])

    assert (units.status_code, units.json()["error"]["code"]) == (422, "refund_exceeds_line")
    assert written() == before


def test_a_purchase_is_refunded_by_line_or_by_amount_as_its_first_refund_was(
    store_client, weekends_at_the_shop
):
    buy(store_client, order_id="BY-LINE")
    buy(store_client, order_id="BY-AMOUNT")
    refund(store_client, "R-1", lines=[{"line_id": "1", "quantity": 1}], order_id="BY-LINE")
    refund(store_client, "R-1", amount="10.00", order_id="BY-AMOUNT")
    before = written()

    by_amount = refund(store_client, "R-2", amount="10.00", order_id="BY-LINE")
    by_line = refund(
        store_client, "R-2", lines=[{"line_id": "1", "quantity": 1}], order_id="BY-AMOUNT"
    )

    for response in (by_amount, by_line):
        assert (response.status_code, response.json()["error"]["code"]) == (
            422,
            "refund_mode_mismatch",
        )
    assert written() == before


def test_a_purchase_reported_without_lines_is_refunded_by_amount(store_client):
    with time_machine.travel(SATURDAY, tick=False):
        store_client.post(
            PURCHASE_URL, {"phone": PHONE, "order_id": "POS-1", "amount": "100.00"}, format="json"
        )

    response = refund(store_client, "R-1", lines=[{"line_id": "1", "quantity": 1}])

    assert (response.status_code, response.json()["error"]["code"]) == (422, "refund_mode_mismatch")
    assert response.json()["error"]["message"] == (
        "This purchase was reported without lines: refund it by amount."
    )


SEED = 16


@pytest.mark.parametrize("case", range(12))
def test_random_line_refunds_add_up_to_what_each_line_earned(store_client, store, case):
    generator = random.Random(SEED * 100 + case)
    _random_rules(generator)
    lines = [
        {
            "line_id": str(n),
            "sku": generator.choice(["COFFEE-L", "BEANS-1KG", "MUG"]),
            "category": generator.choice(["coffee", "beans", "tobacco", ""]),
            "quantity": generator.randint(1, 7),
            "amount": f"{Decimal(generator.randint(0, 9999)) / 100:.2f}",
        }
        for n in range(generator.randint(1, 6))
    ]
    if all(line["amount"] == "0.00" for line in lines):
        lines[0]["amount"] = "0.01"
    earned = buy(store_client, lines)["points_earned"]
    earned_by_line = _points_earned_by_line()

    reversed_in_all = 0
    for n in range(40):
        left = [
            line
            for line in PurchaseLine.objects.order_by("id")
            if line.refunded_amount < line.amount
        ]
        if not left:
            break
        named = generator.sample(left, generator.randint(1, len(left)))
        response = refund(
            store_client, f"R-{n}", lines=[_random_part_of(generator, line) for line in named]
        )
        assert response.status_code in (201, 422), response.json()
        if response.status_code == 201:
            reversed_in_all += response.json()["points_reversed"]
        for line in PurchaseLine.objects.all():
            assert line.points_reversed <= earned_by_line[line.line_id]
    _refund_what_is_left(store_client)

    purchase = Purchase.objects.get()
    assert purchase.refunded_amount == purchase.amount
    assert purchase.points_reversed == earned
    assert {line.line_id: line.points_reversed for line in PurchaseLine.objects.all()} == (
        earned_by_line
    )
    assert balance() == 0
    assert_ledger_consistent()


def _random_rules(generator: random.Random) -> None:
    """A few promotions and an exclusion, all in effect: multipliers by category, a bonus."""
    EarningRule.objects.create(
        name_en="No points on tobacco",
        name_zh="烟草不积分",
        kind="exclusion",
        categories=["tobacco"],
    )
    for category in generator.sample(["coffee", "beans", ""], 2):
        EarningRule.objects.create(
            name_en=f"More on {category or 'everything'}",
            name_zh="积分倍增",
            kind="multiplier",
            multiplier=Decimal(generator.randint(101, 1000)) / 100,
            categories=[category] if category else [],
        )
    EarningRule.objects.create(
        name_en="A bonus", name_zh="奖励积分", kind="bonus", bonus_points=generator.randint(1, 99)
    )
    program = Program.current()
    program.promotion_stacking = generator.choice(["all", "best", "priority"])
    program.save()
    earning_rules_changed()


def _points_earned_by_line() -> dict[str, int]:
    earned = {line.line_id: 0 for line in PurchaseLine.objects.all()}
    for part in EarnPart.objects.filter(line__isnull=False).select_related("line"):
        earned[part.line.line_id] += part.points
    return earned


def _random_part_of(generator: random.Random, line: PurchaseLine) -> dict:
    """Some units of the line, or some of its money; now and then more than is left."""
    units_left = line.quantity - line.refunded_quantity
    if units_left and generator.random() < 0.5:
        return {"line_id": line.line_id, "quantity": generator.randint(1, units_left + 1)}
    cents_left = int((line.amount - line.refunded_amount) * 100)
    cents = generator.randint(1, cents_left + 1)
    return {"line_id": line.line_id, "amount": f"{Decimal(cents) / 100:.2f}"}


def _refund_what_is_left(client) -> None:
    left = [
        {"line_id": line.line_id, "amount": f"{line.amount - line.refunded_amount:.2f}"}
        for line in PurchaseLine.objects.order_by("id")
        if line.refunded_amount < line.amount
    ]
    if left:
        assert refund(client, "R-last", lines=left).status_code == 201
