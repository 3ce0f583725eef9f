"""A storefront or an app working in Chinese reads no English in an API error.

Every endpoint is called by every kind of caller (none, a store's key, a customer's
token) with the bad requests a developer sends by mistake: no body, a body that is no
JSON or no object, fields of the wrong type or out of range, ids that do not exist, a
method the path does not take. Each is sent with `Accept-Language: zh-hans` and in
English; a run of English words that the Chinese error shows and the English one shows
too reached the caller untranslated (tests/screen_text.py says how runs are found).
The error codes stay English on purpose: an app branches on them."""

import json

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from tests.api.test_authorization_matrix import ENDPOINTS
from tests.catalog.factories import customer_client
from tests.factories import earn
from tests.screen_text import untranslated

pytestmark = pytest.mark.django_db

PHONE = "+8613800138000"
# A value of the wrong type or out of range for every field any endpoint takes.
WRONG_FIELDS = {
    "phone": "12345",
    "order_id": "",
    "refund_id": " ",
    "amount": "-1.005",
    "order_total": "abc",
    "points": -5,
    "item_id": "seven",
    "quantity": 0,
    "code": "",
    "purpose": "win",
    "password": "",
    "new_password": "1",
    "refresh": "not a token",
    "language": "fr",
}
# What an error quotes as it is in any language: the header and schemes a credential
# is sent with, the media type and JSON type the request sent, and its own values.
QUOTED = {"Authorization", "Api-Key", "Bearer", "text", "plain", "list"} | {
    value for value in WRONG_FIELDS.values() if isinstance(value, str)
}
BAD_BODIES = [b"", b'{"phone": ', b"[1, 2]", b"{}", json.dumps(WRONG_FIELDS).encode()]
MISSING_IDS = {"order_id": "999999", "redemption_id": "999999"}


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def callers(store_and_key, store) -> dict[str, APIClient]:
    earn(store=store, phone=PHONE, amount="100.00")
    store_client = APIClient()
    store_client.credentials(HTTP_AUTHORIZATION=f"Api-Key {store_and_key[1]}")
    return {"anonymous": APIClient(), "store": store_client, "customer": customer_client(PHONE)}


def texts_of(response) -> list[str]:
    """Every string of an error answer but its code."""
    if response.status_code < 400:
        return []
    error = response.json()["error"]
    strings, pending = [], [error["message"], error["details"]]
    while pending:
        value = pending.pop()
        if isinstance(value, str):
            strings.append(value)
        elif isinstance(value, dict):
            pending.extend(value.values())
        elif isinstance(value, list):
            pending.extend(value)
    return strings


def errors_in(language: str, client: APIClient, method: str, path: str) -> list[str]:
    texts = []
    for body in BAD_BODIES if method != "GET" else [None]:
        # Each request on its own: a throttle's answer is one of the errors to read,
        # but it must not hide the others.
        cache.clear()
        response = client.generic(
            method, path, body or "", "application/json", HTTP_ACCEPT_LANGUAGE=language
        )
        texts += texts_of(response)
    response = client.generic("PUT", path, "{}", "application/json", HTTP_ACCEPT_LANGUAGE=language)
    texts += texts_of(response)
    response = client.generic(method, path, "a=1", "text/plain", HTTP_ACCEPT_LANGUAGE=language)
    return texts + texts_of(response)


def test_no_api_error_shows_english_to_a_chinese_caller(callers):
    found = {}
    for method, route in ENDPOINTS:
        path = route.format(**MISSING_IDS)
        for caller, client in callers.items():
            chinese = errors_in("zh-hans", client, method, path)
            english = errors_in("en", client, method, path)
            assert len(chinese) == len(english) > 0
            left = set(untranslated("\n".join(chinese), "\n".join(english))) - QUOTED
            if left:
                found[f"{method} {route} as {caller}"] = left

    assert found == {}


def a_second_code_within_the_minute(language: str):
    cache.clear()
    body = {"phone": PHONE, "purpose": "signup"}
    client = APIClient()
    client.post("/api/v1/auth/sms-codes", body, format="json")
    return client.post("/api/v1/auth/sms-codes", body, format="json", HTTP_ACCEPT_LANGUAGE=language)


def test_an_unknown_path_and_a_throttled_request_answer_in_chinese(client):
    unknown = client.get("/api/v1/nothing-here", HTTP_ACCEPT_LANGUAGE="zh-hans")
    english = client.get("/api/v1/nothing-here", HTTP_ACCEPT_LANGUAGE="en")
    throttled = a_second_code_within_the_minute("zh-hans")
    throttled_english = a_second_code_within_the_minute("en")

    assert (unknown.status_code, throttled.status_code) == (404, 429)
    assert untranslated("\n".join(texts_of(unknown)), "\n".join(texts_of(english))) == []
    assert (
        untranslated("\n".join(texts_of(throttled)), "\n".join(texts_of(throttled_english))) == []
    )
