"""GET /api/v1/catalog/items: the rewards on sale now, for anyone, with the stock left."""

from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine
from rest_framework.test import APIClient

from tests.catalog.factories import RewardItemFactory
from tests.factories import earn
from tests.invariants import assert_ledger_consistent

pytestmark = pytest.mark.django_db

SHANGHAI = ZoneInfo("Asia/Shanghai")
CATALOG_URL = "/api/v1/catalog/items"


def shanghai(*args):
    return datetime(*args, tzinfo=SHANGHAI)


@pytest.fixture
def now():
    with time_machine.travel(shanghai(2026, 7, 6, 10, 0), tick=False):
        yield shanghai(2026, 7, 6, 10, 0)


def test_anyone_sees_the_items_on_sale_now_cheapest_first_with_the_stock_left(now):
    # Given items on sale, with and without a window, limited and unlimited
    bag = RewardItemFactory(
        name="Canvas tote bag",
        description="Natural cotton",
        points=800,
        cash_price=Decimal("10.00"),
        stock=3,
    )
    voucher = RewardItemFactory(name="Coffee voucher", description="", points=200, stock=None)
    windowed = RewardItemFactory(
        name="Mooncake",
        points=500,
        stock=0,
        active_from=shanghai(2026, 7, 6, 10, 0),
        active_until=shanghai(2026, 7, 6, 10, 0, 1),
    )
    # And items that are not on sale now
    RewardItemFactory(name="Withdrawn", points=100, is_active=False)
    RewardItemFactory(name="Coming soon", points=100, active_from=shanghai(2026, 7, 6, 10, 0, 1))
    RewardItemFactory(name="Just ended", points=100, active_until=shanghai(2026, 7, 6, 10, 0))
    RewardItemFactory(
        name="Last year",
        points=100,
        active_from=shanghai(2025, 1, 1),
        active_until=shanghai(2025, 12, 31),
    )

    # When someone without any credentials asks for the catalog
    response = APIClient().get(CATALOG_URL)

    # Then only the items on sale now are listed, with what is left of them
    assert response.status_code == 200
    assert response.json() == {
        "results": [
            {
                "id": voucher.pk,
                "name": "Coffee voucher",
                "description": "",
                "image": None,
                "points": 200,
                "cash_price": "0.00",
                "stock_left": None,
            },
            {
                "id": windowed.pk,
                "name": "Mooncake",
                "description": "A reward",
                "image": None,
                "points": 500,
                "cash_price": "0.00",
                "stock_left": 0,
            },
            {
                "id": bag.pk,
                "name": "Canvas tote bag",
                "description": "Natural cotton",
                "image": None,
                "points": 800,
                "cash_price": "10.00",
                "stock_left": 3,
            },
        ]
    }


def test_an_empty_catalog_is_an_empty_list(now):
    assert APIClient().get(CATALOG_URL).json() == {"results": []}


def test_the_stock_left_follows_orders_and_cancels(now, store, store_client):
    earn(store=store, phone="+8613800138000", amount="1000.00")
    lamp = RewardItemFactory(points=100, stock=5)
    body = {"phone": "+8613800138000", "item_id": lamp.pk, "quantity": 2}
    placed = store_client.post("/api/v1/reward-orders", body, format="json").json()

    assert APIClient().get(CATALOG_URL).json()["results"][0]["stock_left"] == 3

    store_client.post(f"/api/v1/reward-orders/{placed['id']}/cancel")

    assert APIClient().get(CATALOG_URL).json()["results"][0]["stock_left"] == 5
    assert_ledger_consistent()


@pytest.mark.parametrize(
    "authorization",
    ["Api-Key not-a-key", "Bearer not-a-token", "Basic Zm9vOmJhcg==", "garbage"],
)
def test_the_catalog_ignores_credentials_it_does_not_need(now, authorization):
    RewardItemFactory(points=100)

    response = APIClient().get(CATALOG_URL, headers={"Authorization": authorization})

    assert response.status_code == 200
    assert len(response.json()["results"]) == 1


def test_the_catalog_is_read_only(now):
    response = APIClient().post(CATALOG_URL, {"name": "Free money"}, format="json")

    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"
