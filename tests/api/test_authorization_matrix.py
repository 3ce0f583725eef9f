"""Who may call what (docs/api.md, "Credentials"): every endpoint under /api/v1/, as
Django's URL resolver lists them, against every kind of caller.

A store key sees every member; a customer token sees only its own member; a store
reads and cancels only the redemptions and reward orders it created (another store gets
404), while any store previews a pickup code and hands the reward over by it; the
catalog and the sign-up and login endpoints need no credentials and ignore any sent.
A refusal changes nothing in the database. An endpoint the resolver knows and the
matrix does not fails, by name, so a new endpoint cannot ship without its row.
"""

import json
import re
from dataclasses import dataclass
from decimal import Decimal

import pytest
from django.apps import apps
from django.core.cache import cache
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import User
from accounts.services import tokens_for
from accounts.sms import backends as sms_backends
from catalog.services import reward_order_place
from loyalty.models import EventRule, Member, StoreAPIKey
from loyalty.services.events import store_event_record
from loyalty.services.redemptions import redemption_hold
from loyalty.services.stores import store_api_key_issue, store_api_key_revoke, store_create
from tests.catalog.factories import PASSWORD, SMS_CODE, RewardItemFactory, customer_client
from tests.factories import earn

API_PREFIX = "/api/v1/"
PHONE_A = "+8613800138000"
PHONE_B = "+8613900139000"
NEW_PHONE = "+8613700137000"

CALLERS = (
    "anonymous",
    "customer A",
    "customer B",
    "store key",
    "revoked key",
    "other store's key",
    "staff's token",
)
# Statuses in the order of CALLERS. "customer B" acts on customer A's objects, "other
# store's key" on those the first store ("store key") created; both act for themselves
# elsewhere. The revoked key is the first store's. The staff's token is an access token
# minted for a superuser: staff log in to admin only, and no customer endpoint takes it.
MATRIX = {
    # Storefront: a store key, any store's, except for what another store created.
    ("POST", "/api/v1/purchases"): (401, 401, 401, 201, 401, 201, 401),
    ("POST", "/api/v1/purchases/preview"): (401, 401, 401, 200, 401, 200, 401),
    ("POST", "/api/v1/events"): (401, 401, 401, 201, 401, 201, 401),
    ("POST", "/api/v1/purchases/{order_id}/refunds"): (401, 401, 401, 201, 401, 404, 401),
    ("POST", "/api/v1/members/lookup"): (401, 401, 401, 200, 401, 200, 401),
    ("POST", "/api/v1/redemptions/quote"): (401, 401, 401, 200, 401, 200, 401),
    ("POST", "/api/v1/redemptions"): (401, 401, 401, 201, 401, 201, 401),
    ("GET", "/api/v1/redemptions/{redemption_id}"): (401, 401, 401, 200, 401, 404, 401),
    ("POST", "/api/v1/redemptions/{redemption_id}/commit"): (401, 401, 401, 200, 401, 404, 401),
    ("POST", "/api/v1/redemptions/{redemption_id}/cancel"): (401, 401, 401, 200, 401, 404, 401),
    ("POST", "/api/v1/reward-orders"): (401, 401, 401, 201, 401, 201, 401),
    ("POST", "/api/v1/reward-orders/lookup"): (401, 401, 401, 200, 401, 200, 401),
    ("POST", "/api/v1/reward-orders/fulfil"): (401, 401, 401, 200, 401, 200, 401),
    ("GET", "/api/v1/reward-orders/{order_id}"): (401, 401, 401, 200, 401, 404, 401),
    ("POST", "/api/v1/reward-orders/{order_id}/cancel"): (401, 401, 401, 200, 401, 404, 401),
    # The customer's own: a customer token, for its own member only.
    ("GET", "/api/v1/me"): (401, 200, 200, 401, 401, 401, 403),
    ("GET", "/api/v1/me/transactions"): (401, 200, 200, 401, 401, 401, 403),
    ("GET", "/api/v1/me/profile"): (401, 200, 200, 401, 401, 401, 403),
    ("PATCH", "/api/v1/me/profile"): (401, 200, 200, 401, 401, 401, 403),
    ("POST", "/api/v1/me/check-ins"): (401, 201, 201, 401, 401, 401, 403),
    ("GET", "/api/v1/me/events"): (401, 200, 200, 401, 401, 401, 403),
    ("GET", "/api/v1/me/reward-orders"): (401, 200, 200, 401, 401, 401, 403),
    ("POST", "/api/v1/me/reward-orders"): (401, 201, 201, 401, 401, 401, 403),
    ("POST", "/api/v1/me/reward-orders/{order_id}/cancel"): (401, 200, 404, 401, 401, 401, 403),
    # Open to anyone; credentials sent along change nothing.
    ("GET", "/api/v1/catalog/items"): (200, 200, 200, 200, 200, 200, 200),
    ("POST", "/api/v1/auth/sms-codes"): (202, 202, 202, 202, 202, 202, 202),
    ("POST", "/api/v1/auth/signup"): (201, 201, 201, 201, 201, 201, 201),
    ("POST", "/api/v1/auth/token"): (200, 200, 200, 200, 200, 200, 200),
    ("POST", "/api/v1/auth/token/refresh"): (200, 200, 200, 200, 200, 200, 200),
    ("POST", "/api/v1/auth/password-reset"): (204, 204, 204, 204, 204, 204, 204),
}
ERROR_CODE_OF_STATUS = {401: "not_authenticated", 403: "permission_denied", 404: "not_found"}
# Written by any request that carries a valid key, refused or not: when the key was last used.
WRITTEN_ON_EVERY_USE = {("loyalty.StoreAPIKey", "last_used_at")}


def api_endpoints() -> list[tuple[str, str]]:
    """(method, route) of every view under /api/v1/, routes written as in the docs."""
    endpoints = []

    def walk(patterns, prefix):
        for pattern in patterns:
            route = prefix + str(pattern.pattern)
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, route)
            elif isinstance(pattern, URLPattern) and route.startswith(API_PREFIX):
                view = getattr(pattern.callback, "view_class", None)
                methods = (
                    [m for m in view.http_method_names if m != "options" and hasattr(view, m)]
                    if view is not None
                    else ["any method"]
                )
                docs_route = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", route)
                endpoints.extend((method.upper(), docs_route) for method in methods)

    walk(get_resolver().url_patterns, "/")
    return sorted(endpoints)


ENDPOINTS = api_endpoints()


@dataclass
class World:
    """Two stores, two customers with points, and the first store's objects."""

    clients: dict[str, APIClient]
    item_id: int
    store_order_id: int
    store_order_code: str
    own_order_id: int
    own_order_code: str
    redemption_id: int
    refresh_token: str
    signup_code: str
    reset_code: str

    def traces_of(self, customer: str) -> list[str]:
        """What in an answer would show the customer's data: phone, order ids, pickup codes."""
        if customer == "customer A":
            return [PHONE_A, "POS-A-", self.store_order_code, self.own_order_code]
        return [PHONE_B, "POS-B-"]


def sms_code_for(phone: str, purpose: str, capture) -> str:
    with capture(execute=True):
        response = APIClient().post(
            "/api/v1/auth/sms-codes", {"phone": phone, "purpose": purpose}, format="json"
        )
    assert response.status_code == 202, response.content
    sent = [text for text in sms_backends.outbox if text["to"] == phone]
    return SMS_CODE.search(sent[-1]["body"]).group()


def staff_token_client() -> APIClient:
    superuser = User.objects.create_superuser(phone="+8613500135000", password=PASSWORD)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens_for(superuser)['access']}")
    return client


def key_client(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
    return client


@pytest.fixture
def world(db, settings, django_capture_on_commit_callbacks):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    store, key = store_create(name="Web shop")
    revoked_key = store_api_key_issue(store=store, name="old till")
    store_api_key_revoke(api_key=StoreAPIKey.objects.get(store=store, name="old till"))
    _other_store, other_key = store_create(name="POS counter")
    earn(store=store, phone=PHONE_A, amount="5000.00", order_id="POS-A-1")
    earn(store=store, phone=PHONE_B, amount="5000.00", order_id="POS-B-1")
    customer_a = customer_client(PHONE_A)
    customer_b = customer_client(PHONE_B)
    member_a = Member.objects.get(phone=PHONE_A)
    item = RewardItemFactory(points=100, stock=10)
    redemption = redemption_hold(
        store=store,
        member=member_a,
        order_id="POS-A-2",
        order_total=Decimal("80.00"),
        points=500,
    )
    store_order = reward_order_place(member=member_a, item_id=item.pk, quantity=1, store=store)
    own_order = reward_order_place(member=member_a, item_id=item.pk, quantity=1)
    EventRule.objects.create(
        event_type="review_written", name_en="Review written", name_zh="写评价", points=20
    )
    store_event_record(
        store=store,
        phone=PHONE_A,
        event_type="review_written",
        external_id="POS-A-REVIEW",
        occurred_at=timezone.now(),
    )
    login = APIClient().post(
        "/api/v1/auth/token", {"phone": PHONE_A, "password": PASSWORD}, format="json"
    )
    # Signing up spent the phones' SMS caps; the codes the auth rows use come afresh.
    cache.clear()
    signup_code = sms_code_for(NEW_PHONE, "signup", django_capture_on_commit_callbacks)
    reset_code = sms_code_for(PHONE_A, "password_reset", django_capture_on_commit_callbacks)
    cache.clear()
    return World(
        clients={
            "anonymous": APIClient(),
            "customer A": customer_a,
            "customer B": customer_b,
            "store key": key_client(key),
            "revoked key": key_client(revoked_key),
            "other store's key": key_client(other_key),
            "staff's token": staff_token_client(),
        },
        item_id=item.pk,
        store_order_id=store_order.pk,
        store_order_code=store_order.code,
        own_order_id=own_order.pk,
        own_order_code=own_order.code,
        redemption_id=redemption.pk,
        refresh_token=login.json()["refresh"],
        signup_code=signup_code,
        reset_code=reset_code,
    )


def request_for(endpoint: tuple[str, str], world: World) -> tuple[str, dict | None]:
    """The path and body of a request that succeeds for the caller the endpoint is for:
    on the first store's purchase, redemption and reward order, on customer A's own order."""
    method, route = endpoint
    path_ids = {
        "order_id": "POS-A-1" if route.startswith("/api/v1/purchases/{") else None,
        "redemption_id": world.redemption_id,
    }
    if route.startswith("/api/v1/reward-orders/"):
        path_ids["order_id"] = world.store_order_id
    elif route.startswith("/api/v1/me/reward-orders/"):
        path_ids["order_id"] = world.own_order_id
    bodies = {
        "/api/v1/purchases": {"phone": PHONE_A, "order_id": "POS-A-3", "amount": "100.00"},
        "/api/v1/purchases/preview": {"phone": PHONE_A, "amount": "100.00"},
        "/api/v1/events": {
            "phone": PHONE_A,
            "type": "review_written",
            "external_id": "POS-A-REVIEW-2",
            "occurred_at": "2026-01-01T10:00:00+08:00",
        },
        "/api/v1/purchases/{order_id}/refunds": {"refund_id": "R-1", "amount": "10.00"},
        "/api/v1/members/lookup": {"phone": PHONE_A},
        "/api/v1/redemptions/quote": {"phone": PHONE_A, "order_total": "80.00"},
        "/api/v1/redemptions": {
            "phone": PHONE_A,
            "order_id": "POS-A-4",
            "order_total": "80.00",
            "points": 100,
        },
        "/api/v1/reward-orders": {"phone": PHONE_A, "item_id": world.item_id, "quantity": 1},
        "/api/v1/reward-orders/lookup": {"code": world.store_order_code},
        "/api/v1/reward-orders/fulfil": {"code": world.store_order_code},
        "/api/v1/me/reward-orders": {"item_id": world.item_id, "quantity": 1},
        "/api/v1/me/profile": {
            "language": "zh-hans",
            "name": "Li Wei",
            "birthday": {"month": 5, "day": 17},
        },
        "/api/v1/auth/sms-codes": {"phone": "+8613600136000", "purpose": "signup"},
        "/api/v1/auth/signup": {
            "phone": NEW_PHONE,
            "code": world.signup_code,
            "password": "a new passphrase 2026",
        },
        "/api/v1/auth/token": {"phone": PHONE_A, "password": PASSWORD},
        "/api/v1/auth/token/refresh": {"refresh": world.refresh_token},
        "/api/v1/auth/password-reset": {
            "phone": PHONE_A,
            "code": world.reset_code,
            "new_password": "another passphrase 2026",
        },
    }
    return route.format(**path_ids), bodies.get(route) if method != "GET" else None


def database_state() -> dict:
    """Every row of the project's own tables, but for what any use of a key writes."""
    state = {}
    for app in ("accounts", "loyalty", "catalog"):
        for model in apps.get_app_config(app).get_models():
            label = model._meta.label
            columns = [
                field.attname
                for field in model._meta.concrete_fields
                if (label, field.name) not in WRITTEN_ON_EVERY_USE
            ]
            state[label] = list(model.objects.order_by("pk").values_list(*columns))
    return state


def test_every_api_endpoint_is_in_the_matrix_and_every_row_is_an_endpoint():
    missing = [f"{method} {route}" for method, route in ENDPOINTS if (method, route) not in MATRIX]
    stale = [f"{method} {route}" for method, route in MATRIX if (method, route) not in ENDPOINTS]

    assert missing == [], f"endpoints missing from the authorization matrix: {missing}"
    assert stale == [], f"rows of the authorization matrix that are no endpoint: {stale}"


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=" ".join)
def test_each_caller_gets_what_the_contract_gives_it(endpoint, caller, world):
    if endpoint not in MATRIX:
        pytest.fail(f"{endpoint[0]} {endpoint[1]} is missing from the authorization matrix")
    expected = MATRIX[endpoint][CALLERS.index(caller)]
    path, body = request_for(endpoint, world)
    before = database_state()

    client = world.clients[caller]
    if endpoint[0] == "GET":
        response = client.get(path)
    else:
        response = client.generic(endpoint[0], path, json.dumps(body), "application/json")

    assert response.status_code == expected, response.content
    if expected in ERROR_CODE_OF_STATUS:
        assert response.json()["error"]["code"] == ERROR_CODE_OF_STATUS[expected]
        assert database_state() == before
    other_customer = {"customer A": "customer B", "customer B": "customer A"}.get(caller)
    if other_customer is not None and response.status_code < 300:
        answer = response.content.decode()
        seen = [trace for trace in world.traces_of(other_customer) if trace in answer]
        assert seen == [], f"{caller} saw {other_customer}'s data"
