"""A manager sets up "double points on weekends at Shop A, except tobacco, at most twice
a week per member" in admin; the storefront's next purchase earns by it at once."""

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
import time_machine
from rest_framework.test import APIClient

from loyalty.models import EarningRule
from loyalty.services.stores import store_create
from tests.admin import changelist, staff_member

SATURDAY = datetime(2026, 7, 4, 11, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
BASKET = {
    "phone": "+8613800138000",
    "amount": "350.00",
    "lines": [
        {"line_id": "1", "sku": "COFFEE-L", "category": "coffee", "quantity": 2, "amount": "60.00"},
        {"line_id": "2", "sku": "BEANS", "category": "beans", "quantity": 1, "amount": "240.00"},
        {"line_id": "3", "sku": "CIG-20", "category": "tobacco", "quantity": 1, "amount": "50.00"},
    ],
}
RULE_FORM = {
    "priority": "0",
    "is_active": "on",
    "starts_at_0": "",
    "starts_at_1": "",
    "ends_at_0": "",
    "ends_at_1": "",
    "hours_from": "",
    "hours_until": "",
    "skus": "",
    "categories": "",
    "minimum_spend": "",
    "multiplier": "",
    "bonus_points": "",
    "limit_per_member": "",
    "limit_period": "week",
    "budget_points": "",
}


@pytest.fixture
def manager_client(client, db):
    manager = staff_member("+8613900000002", "view_earningrule", "add_earningrule", name="Li")
    client.force_login(manager)
    return client


def add_rule(client, **fields):
    response = client.post(f"{changelist(EarningRule)}add/", {**RULE_FORM, **fields}, follow=True)
    assert response.status_code == 200
    return response


def earned(store_key: str, order_id: str) -> int:
    storefront = APIClient()
    storefront.credentials(HTTP_AUTHORIZATION=f"Api-Key {store_key}")
    with time_machine.travel(SATURDAY, tick=False):
        response = storefront.post(
            "/api/v1/purchases", {**BASKET, "order_id": order_id}, format="json"
        )
    assert response.status_code == 201, response.content
    return response.json()["points_earned"]


def test_a_manager_sets_up_double_weekends_at_shop_a_except_tobacco(manager_client):
    shop_a, key = store_create(name="Shop A")

    add_rule(
        manager_client,
        name_en="No points on tobacco",
        name_zh="烟草不积分",
        kind="exclusion",
        categories="tobacco",
    )
    add_rule(
        manager_client,
        name_en="Double on weekends at Shop A",
        name_zh="A店周末双倍",
        kind="multiplier",
        multiplier="2",
        days=["6", "7"],
        stores=[str(shop_a.pk)],
        limit_per_member="2",
        limit_period="week",
    )

    assert EarningRule.objects.count() == 2
    assert [earned(key, f"A-{n}") for n in range(3)] == [600, 600, 300]


@pytest.mark.parametrize(
    "fields, field, message",
    [
        ({"kind": "multiplier"}, "multiplier", "A multiplying promotion needs its multiplier."),
        ({"kind": "bonus"}, "bonus_points", "A bonus promotion needs its bonus points."),
        ({"kind": "multiplier", "multiplier": "10.01"}, "multiplier", None),
        ({"kind": "bonus", "bonus_points": "5", "hours_from": "22:00"}, "hours_until", None),
    ],
)
def test_a_rule_that_cannot_work_is_refused_with_a_reason(manager_client, fields, field, message):
    response = add_rule(manager_client, name_en="Broken", name_zh="坏规则", **fields)

    errors = response.context["adminform"].form.errors
    assert field in errors
    if message:
        assert errors[field] == [message]
    assert not EarningRule.objects.exists()
