"""POST /api/v1/purchases/preview: what a basket would earn, through the very evaluation
the purchase runs, with the reason each rule in effect would not apply; it writes
nothing, and the purchase that follows earns exactly what it said."""

import random
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine

from loyalty.models import AppliedRule, EarningRule, EarnPart, LedgerEntry, Purchase, RuleUse
from loyalty.services.promotions import earning_rules_changed

SATURDAY = datetime(2026, 7, 4, 11, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
PREVIEW_URL = "/api/v1/purchases/preview"
PURCHASE_URL = "/api/v1/purchases"
PHONE = "+8613800138000"
LINES = [
    {"line_id": "1", "sku": "COFFEE-L", "category": "coffee", "quantity": 2, "amount": "60.00"},
    {"line_id": "2", "sku": "BEANS-1KG", "category": "beans", "quantity": 1, "amount": "240.00"},
    {"line_id": "3", "sku": "CIG-20", "category": "tobacco", "quantity": 1, "amount": "50.00"},
]
BASKET = {"phone": PHONE, "amount": "350.00", "lines": LINES}


@pytest.fixture
def rules(store):
    exclusion = EarningRule.objects.create(
        name_en="No points on tobacco",
        name_zh="烟草不积分",
        kind="exclusion",
        categories=["tobacco"],
    )
    double = EarningRule.objects.create(
        name_en="Double on weekends",
        name_zh="周末双倍",
        kind="multiplier",
        multiplier=Decimal("2"),
        days=[6, 7],
        limit_per_member=1,
        limit_period="week",
    )
    big_spender = EarningRule.objects.create(
        name_en="200 more over 500.00",
        name_zh="满500.00多送200",
        kind="bonus",
        bonus_points=200,
        minimum_spend=Decimal("500.00"),
    )
    earning_rules_changed()
    return exclusion, double, big_spender


def post(client, url, body, **headers):
    with time_machine.travel(SATURDAY, tick=False):
        return client.post(url, body, format="json", headers=headers)


def written():
    return (
        Purchase.objects.count(),
        LedgerEntry.objects.count(),
        EarnPart.objects.count(),
        AppliedRule.objects.count(),
        RuleUse.objects.count(),
        list(EarningRule.objects.order_by("pk").values_list("points_awarded", flat=True)),
    )


def test_the_preview_says_what_the_purchase_then_earns_and_writes_nothing(store_client, rules):
    _exclusion, double, big_spender = rules
    before = written()

    preview = post(store_client, PREVIEW_URL, BASKET)

    assert preview.status_code == 200
    assert written() == before
    assert preview.json() == {
        "points": 600,
        "lines": [
            {"line_id": "1", "points": 120},
            {"line_id": "2", "points": 480},
            {"line_id": "3", "points": 0},
        ],
        "rules_applied": [{"rule_id": double.pk, "name": "Double on weekends", "points": 300}],
        "rules_not_applied": [
            {
                "rule_id": big_spender.pk,
                "name": "200 more over 500.00",
                "reason": "below_minimum_spend",
                "message": "The basket spends less than its minimum on the items it covers.",
            }
        ],
    }
    purchase = post(store_client, PURCHASE_URL, {**BASKET, "order_id": "A-1"})
    assert purchase.json()["points_earned"] == preview.json()["points"]


def test_the_preview_speaks_the_callers_language(store_client, rules):
    preview = post(store_client, PREVIEW_URL, BASKET, **{"Accept-Language": "zh-hans"})

    assert preview.json()["rules_applied"][0]["name"] == "周末双倍"
    assert (
        preview.json()["rules_not_applied"][0]["message"]
        == "该单在其适用商品上的消费低于最低消费。"
    )


def test_a_promotion_the_member_has_used_up_is_previewed_as_such(store_client, rules):
    _exclusion, double, _big_spender = rules
    post(store_client, PURCHASE_URL, {**BASKET, "order_id": "A-1"})

    preview = post(store_client, PREVIEW_URL, BASKET)

    assert preview.json()["points"] == 300
    reasons = {row["rule_id"]: row["reason"] for row in preview.json()["rules_not_applied"]}
    assert reasons[double.pk] == "limit_reached"


def test_a_preview_needs_a_stores_key_and_a_valid_basket(client, store_client, rules):
    unauthenticated = client.post(PREVIEW_URL, BASKET, content_type="application/json")
    wrong = post(store_client, PREVIEW_URL, {**BASKET, "amount": "351.00"})

    assert unauthenticated.status_code == 401
    assert wrong.status_code == 400
    assert "lines" in wrong.json()["error"]["details"]


SEED = 2026


@pytest.mark.parametrize("case", range(20))
def test_the_preview_equals_the_earn_for_random_baskets(store_client, rules, case):
    generator = random.Random(SEED * 100 + case)
    skus = ["COFFEE-L", "BEANS-1KG", "CIG-20", "MUG"]
    categories = {"COFFEE-L": "coffee", "BEANS-1KG": "beans", "CIG-20": "tobacco", "MUG": ""}
    lines = []
    for number in range(generator.randint(1, 12)):
        sku = generator.choice(skus)
        # The first line costs something: a purchase is never of 0.00.
        cents = generator.randint(0 if number else 1, 40_000)
        lines.append(
            {
                "line_id": str(number),
                "sku": sku,
                "category": categories[sku],
                "quantity": generator.randint(1, 5),
                "amount": f"{cents / 100:.2f}",
            }
        )
    amount = f"{sum(Decimal(line['amount']) for line in lines):.2f}"
    basket = {"phone": PHONE, "amount": amount, "lines": lines}

    preview = post(store_client, PREVIEW_URL, basket).json()
    earned = post(store_client, PURCHASE_URL, {**basket, "order_id": f"R-{case}"}).json()

    assert earned["points_earned"] == preview["points"], f"seed {SEED * 100 + case}"
    purchase = Purchase.objects.get(order_id=f"R-{case}")
    by_line = {}
    for part in EarnPart.objects.filter(purchase=purchase, line__isnull=False).select_related(
        "line"
    ):
        by_line[part.line.line_id] = by_line.get(part.line.line_id, 0) + part.points
    assert [by_line[row["line_id"]] for row in preview["lines"]] == [
        row["points"] for row in preview["lines"]
    ]
