"""Bad requests to the storefront endpoints, and to the customer's profile: always a 4xx in
the error shape, never a 500, and never a change in the database."""

from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import User
from accounts.services import tokens_for
from loyalty.models import (
    Allocation,
    EventRule,
    IdempotentRequest,
    LedgerEntry,
    Lot,
    Member,
    MemberEvent,
    Purchase,
    Refund,
    StoreAPIKey,
)
from loyalty.services.members import member_link_user
from loyalty.services.stores import store_api_key_revoke

PHONE = "+8613800138000"
PURCHASE_URL = "/api/v1/purchases"
REFUND_URL = "/api/v1/purchases/POS-1/refunds"
LOOKUP_URL = "/api/v1/members/lookup"
EVENTS_URL = "/api/v1/events"
VALID_BODIES = {
    PURCHASE_URL: {"phone": PHONE, "order_id": "POS-2", "amount": "300.00"},
    REFUND_URL: {"refund_id": "R-1", "amount": "10.00"},
    LOOKUP_URL: {"phone": PHONE},
    EVENTS_URL: {
        "phone": PHONE,
        "type": "review_written",
        "external_id": "REVIEW-1",
        "occurred_at": "2026-01-01T10:00:00+08:00",
    },
}
MISSING = object()

BAD_PHONES = [
    pytest.param("12345", id="too-short"),
    pytest.param("+861380013800", id="one-digit-short"),
    pytest.param("+86138001380001", id="one-digit-long"),
    pytest.param("not a phone", id="words"),
    pytest.param("", id="empty"),
    pytest.param("   ", id="blank"),
    pytest.param("+86 138 0013 8000 0000 0000 0000 0000", id="over-32-chars"),
    pytest.param("1" * 10_000, id="10k-digits"),
    pytest.param(13800138000, id="number"),
    pytest.param(None, id="null"),
    pytest.param([PHONE], id="list"),
    pytest.param({"number": PHONE}, id="object"),
    pytest.param(True, id="bool"),
    pytest.param(MISSING, id="missing"),
]

BAD_AMOUNTS = [
    pytest.param("300.001", id="3-decimals"),
    pytest.param("0.001", id="tiny-3-decimals"),
    pytest.param("-1.00", id="negative"),
    pytest.param("-0.01", id="negative-cent"),
    pytest.param("0", id="zero"),
    pytest.param("0.00", id="zero-cents"),
    pytest.param("99999999999.00", id="huge"),
    pytest.param("10000000000.00", id="just-too-large"),
    pytest.param("9" * 40, id="40-digits"),
    pytest.param("1e3", id="exponent"),
    pytest.param("NaN", id="nan"),
    pytest.param("Infinity", id="infinity"),
    pytest.param(" 300.00", id="leading-space"),
    pytest.param("300.00 ", id="trailing-space"),
    pytest.param("300.00\n", id="trailing-newline"),
    pytest.param("300,00", id="decimal-comma"),
    pytest.param("+300.00", id="plus-sign"),
    pytest.param("300.", id="dot-without-cents"),
    pytest.param(".50", id="cents-without-units"),
    pytest.param("１２.００", id="fullwidth-digits"),
    pytest.param("٣٠٠", id="arabic-indic-digits"),
    pytest.param("", id="empty"),
    pytest.param(300, id="integer"),
    pytest.param(300.0, id="float"),
    pytest.param(None, id="null"),
    pytest.param(["300.00"], id="list"),
    pytest.param({"value": "300.00"}, id="object"),
    pytest.param(True, id="bool"),
    pytest.param(MISSING, id="missing"),
]

BAD_REFERENCES = [
    pytest.param("POS 2", id="space"),
    pytest.param(" POS-2", id="leading-space"),
    pytest.param("POS-2\n", id="trailing-newline"),
    pytest.param("x" * 65, id="65-chars"),
    pytest.param("", id="empty"),
    pytest.param("订单-2", id="non-ascii"),
    pytest.param("POS/2", id="slash"),
    pytest.param("POS#2", id="hash"),
    pytest.param(2, id="number"),
    pytest.param(None, id="null"),
    pytest.param(["POS-2"], id="list"),
    pytest.param({"id": "POS-2"}, id="object"),
    pytest.param(MISSING, id="missing"),
]

BAD_EVENT_TYPES = [
    pytest.param("review written", id="space"),
    pytest.param("review_written\n", id="trailing-newline"),
    pytest.param("x" * 41, id="41-chars"),
    pytest.param("", id="empty"),
    pytest.param("写评价", id="non-ascii"),
    pytest.param("review.written", id="dot"),
    pytest.param(7, id="number"),
    pytest.param(None, id="null"),
    pytest.param(["review_written"], id="list"),
    pytest.param(MISSING, id="missing"),
]

BAD_TIMES = [
    pytest.param("2026-02-30T10:00:00+08:00", id="30-february"),
    pytest.param("2026-11-23T25:00:00+08:00", id="hour-25"),
    pytest.param("0000-01-01T00:00:00Z", id="year-0"),
    pytest.param("0001-01-01T00:00:00+14:00", id="before-year-1-in-utc"),
    pytest.param("9999-12-31T23:59:59-14:00", id="after-year-9999-in-utc"),
    pytest.param("1999-12-31T23:59:59Z", id="before-2000"),
    pytest.param("2099-01-01T00:00:00+08:00", id="future"),
    pytest.param("2026-11-23T10:00:00", id="no-offset"),
    pytest.param("2026-11-23T10:00+08:00", id="no-seconds"),
    pytest.param("2026-11-23", id="date-only"),
    pytest.param("2026-11-23T10:00:00+24:00", id="offset-24-hours"),
    pytest.param("2026-11-23T10:00:00.1234567890Z", id="10-decimals"),
    pytest.param("２０２６-11-23T10:00:00Z", id="fullwidth-digits"),
    pytest.param("yesterday", id="words"),
    pytest.param("", id="empty"),
    pytest.param(1_790_000_000, id="epoch-number"),
    pytest.param(None, id="null"),
    pytest.param(["2026-01-01T10:00:00Z"], id="list"),
    pytest.param(MISSING, id="missing"),
]

NON_OBJECT_JSON_BODIES = [
    pytest.param("[]", id="list"),
    pytest.param('"hello"', id="string"),
    pytest.param("42", id="number"),
    pytest.param("null", id="null"),
]

UNPARSABLE_BODIES = [
    pytest.param(b'{"phone": "+8613800138000",', id="truncated"),
    pytest.param(b"{'phone': '+8613800138000'}", id="single-quotes"),
    pytest.param(b'{"amount": NaN}', id="nan-literal"),
    pytest.param(b'{"phone": "\xff\xfe"}', id="not-utf8"),
    pytest.param(b'{"phone": "\\ud800"}', id="lone-surrogate"),
    pytest.param(b'{"\\udfff": "+8613800138000"}', id="lone-surrogate-key"),
    pytest.param(b"[" * 100_000 + b"]" * 100_000, id="nested-too-deep"),
]

FOREIGN_CONTENT_TYPES = [
    pytest.param("text/plain", id="text"),
    pytest.param("application/x-www-form-urlencoded", id="form"),
    pytest.param("multipart/form-data; boundary=xyz", id="multipart"),
    pytest.param("application/xml", id="xml"),
]

ENDPOINTS = [PURCHASE_URL, REFUND_URL, LOOKUP_URL, EVENTS_URL]


@pytest.fixture
def state_before(store_client):
    """A member with a purchase POS-1 of 300.00, a custom event type the store may report,
    then the database as it stands."""
    EventRule.objects.create(
        event_type="review_written", name_en="Review written", name_zh="写评价", points=20
    )
    response = store_client.post(
        PURCHASE_URL, {"phone": PHONE, "order_id": "POS-1", "amount": "300.00"}, format="json"
    )
    assert response.status_code == 201
    return database_state()


def database_state():
    return {
        "counts": {
            model.__name__: model.objects.count()
            for model in (
                Member,
                Purchase,
                Refund,
                LedgerEntry,
                Lot,
                Allocation,
                IdempotentRequest,
                MemberEvent,
            )
        },
        "balances": list(Member.objects.order_by("pk").values_list("phone", "balance")),
        "purchases": list(
            Purchase.objects.order_by("pk").values_list("refunded_amount", "points_reversed")
        ),
        "lots": list(Lot.objects.order_by("pk").values_list("remaining", flat=True)),
    }


def with_field(body: dict, field: str, value) -> dict:
    body = dict(body)
    if value is MISSING:
        del body[field]
    else:
        body[field] = value
    return body


def assert_refused(response, status: int, code: str, fields: set | None = None):
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert isinstance(body["error"]["details"], dict)
    if fields is not None:
        assert set(body["error"]["details"]) == fields


# --- fields ------------------------------------------------------------------


@pytest.mark.parametrize("url", [PURCHASE_URL, LOOKUP_URL, EVENTS_URL])
@pytest.mark.parametrize("phone", BAD_PHONES)
def test_a_bad_phone_alone_is_invalid_phone(store_client, state_before, url, phone):
    response = store_client.post(url, with_field(VALID_BODIES[url], "phone", phone), format="json")

    assert_refused(response, 400, "invalid_phone", {"phone"})
    assert database_state() == state_before


@pytest.mark.parametrize("url", [PURCHASE_URL, REFUND_URL])
@pytest.mark.parametrize("amount", BAD_AMOUNTS)
def test_a_bad_amount_is_a_validation_error(store_client, state_before, url, amount):
    response = store_client.post(
        url, with_field(VALID_BODIES[url], "amount", amount), format="json"
    )

    # A refund may leave its amount out for its lines: one missing is said of both.
    missing_refund_amount = url == REFUND_URL and amount is MISSING
    assert_refused(
        response, 400, "validation_error", {"lines" if missing_refund_amount else "amount"}
    )
    assert database_state() == state_before


@pytest.mark.parametrize(
    ("url", "field"),
    [(PURCHASE_URL, "order_id"), (REFUND_URL, "refund_id"), (EVENTS_URL, "external_id")],
)
@pytest.mark.parametrize("reference", BAD_REFERENCES)
def test_a_bad_order_or_refund_id_is_a_validation_error(
    store_client, state_before, url, field, reference
):
    response = store_client.post(
        url, with_field(VALID_BODIES[url], field, reference), format="json"
    )

    assert_refused(response, 400, "validation_error", {field})
    assert database_state() == state_before


@pytest.mark.parametrize(
    "order_id",
    [
        pytest.param("POS%202", id="space"),
        pytest.param("x" * 65, id="65-chars"),
        pytest.param("%E8%AE%A2%E5%8D%95", id="non-ascii"),
        pytest.param("POS-1%0A", id="trailing-newline"),
    ],
)
def test_a_bad_order_id_in_the_refund_url_is_a_validation_error(
    store_client, state_before, order_id
):
    response = store_client.post(
        f"/api/v1/purchases/{order_id}/refunds", VALID_BODIES[REFUND_URL], format="json"
    )

    assert_refused(response, 400, "validation_error", {"order_id"})
    assert database_state() == state_before


@pytest.mark.parametrize("event_type", BAD_EVENT_TYPES)
def test_a_bad_event_type_is_a_validation_error(store_client, state_before, event_type):
    body = with_field(VALID_BODIES[EVENTS_URL], "type", event_type)

    response = store_client.post(EVENTS_URL, body, format="json")

    assert_refused(response, 400, "validation_error", {"type"})
    assert database_state() == state_before


@pytest.mark.parametrize("occurred_at", BAD_TIMES)
def test_a_bad_event_time_is_a_validation_error(store_client, state_before, occurred_at):
    body = with_field(VALID_BODIES[EVENTS_URL], "occurred_at", occurred_at)

    response = store_client.post(EVENTS_URL, body, format="json")

    assert_refused(response, 400, "validation_error", {"occurred_at"})
    assert database_state() == state_before


def test_the_valid_event_body_is_taken(store_client, state_before):
    response = store_client.post(EVENTS_URL, VALID_BODIES[EVENTS_URL], format="json")

    assert response.status_code == 201, response.content
    assert MemberEvent.objects.get().external_id == "REVIEW-1"


def test_several_bad_fields_are_all_reported_as_a_validation_error(store_client, state_before):
    # The phone is wrong too, but it is not the only fault: the generic code applies.
    body = {"phone": "12345", "order_id": "POS 2", "amount": "-1"}

    response = store_client.post(PURCHASE_URL, body, format="json")

    assert_refused(response, 400, "validation_error", {"phone", "order_id", "amount"})
    assert database_state() == state_before


@pytest.mark.parametrize(
    ("url", "fields"),
    [
        (PURCHASE_URL, {"phone", "order_id", "amount"}),
        (REFUND_URL, {"refund_id", "lines"}),
        (EVENTS_URL, {"phone", "type", "external_id", "occurred_at"}),
    ],
)
def test_an_empty_object_lists_every_missing_field(store_client, state_before, url, fields):
    response = store_client.post(url, {}, format="json")

    assert_refused(response, 400, "validation_error", fields)
    assert database_state() == state_before


def test_a_lookup_without_a_phone_is_invalid_phone(store_client, state_before):
    response = store_client.post(LOOKUP_URL, {}, format="json")

    assert_refused(response, 400, "invalid_phone", {"phone"})
    assert database_state() == state_before


# --- the body as a whole -------------------------------------------------------


@pytest.mark.parametrize("url", ENDPOINTS)
@pytest.mark.parametrize("body", NON_OBJECT_JSON_BODIES)
def test_json_that_is_not_an_object_is_a_validation_error(store_client, state_before, url, body):
    response = store_client.post(url, body, content_type="application/json")

    assert_refused(response, 400, "validation_error", {"non_field_errors"})
    assert database_state() == state_before


@pytest.mark.parametrize("url", ENDPOINTS)
@pytest.mark.parametrize("body", UNPARSABLE_BODIES)
def test_a_body_that_is_not_json_is_a_validation_error(store_client, state_before, url, body):
    response = store_client.post(url, body, content_type="application/json")

    assert_refused(response, 400, "validation_error")
    assert database_state() == state_before


@pytest.mark.parametrize(
    ("body", "english", "chinese"),
    [
        (
            b'{"phone": "13800138000",\n "amount": }',
            "The body is not valid JSON: look at line 2, column 12.",
            "请求正文不是有效的 JSON：请查看第 2 行第 12 列。",
        ),
        (
            b'{"phone": "\xff\xfe"}',
            "The body is not valid UTF-8 text.",
            "请求正文不是有效的 UTF-8 文本。",
        ),
        (
            b'{"amount": NaN}',
            "The body holds a number JSON cannot carry (NaN, Infinity or too long).",
            "请求正文中有 JSON 无法表示的数字（NaN、Infinity 或位数过多）。",
        ),
        (
            b'{"amount": 1' + b"0" * 5000 + b"}",
            "The body holds a number JSON cannot carry (NaN, Infinity or too long).",
            "请求正文中有 JSON 无法表示的数字（NaN、Infinity 或位数过多）。",
        ),
    ],
)
def test_a_body_that_is_not_json_says_what_is_wrong_in_the_callers_language(
    store_client, state_before, body, english, chinese
):
    for language, message in (("en", english), ("zh-hans", chinese)):
        response = store_client.post(
            PURCHASE_URL, body, content_type="application/json", HTTP_ACCEPT_LANGUAGE=language
        )

        assert_refused(response, 400, "validation_error")
        assert response.json()["error"]["message"] == message
    assert database_state() == state_before


@pytest.mark.parametrize("url", ENDPOINTS)
def test_a_body_over_the_upload_limit_is_refused_in_the_error_shape(
    store_client, state_before, url, settings
):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    body = {**VALID_BODIES[url], "note": "x" * 10_000}

    response = store_client.post(url, body, format="json")

    assert_refused(response, 400, "validation_error")
    assert database_state() == state_before


@pytest.mark.parametrize("url", ENDPOINTS)
@pytest.mark.parametrize("content_type", FOREIGN_CONTENT_TYPES)
def test_a_body_that_is_not_json_typed_is_unsupported(
    store_client, state_before, url, content_type
):
    body = "phone=%2B8613800138000&order_id=POS-2&refund_id=R-1&amount=300.00"

    response = store_client.post(url, body, content_type=content_type)

    assert_refused(response, 415, "unsupported_media_type")
    assert database_state() == state_before


@pytest.mark.parametrize("url", ENDPOINTS)
@pytest.mark.parametrize("method", ["get", "put", "patch", "delete"])
def test_other_methods_are_not_allowed(store_client, state_before, url, method):
    response = getattr(store_client, method)(url)

    assert_refused(response, 405, "method_not_allowed")
    assert database_state() == state_before


# --- authentication -------------------------------------------------------------

AUTHORIZATION_HEADERS = [
    pytest.param(lambda key: None, id="no-header"),
    pytest.param(lambda key: "", id="empty-header"),
    pytest.param(lambda key: "Api-Key", id="scheme-without-key"),
    pytest.param(lambda key: "Api-Key ", id="scheme-and-space"),
    pytest.param(lambda key: key, id="key-without-scheme"),
    pytest.param(lambda key: f"Bearer {key}", id="bearer-scheme"),
    pytest.param(lambda key: f"Token {key}", id="token-scheme"),
    pytest.param(lambda key: f"Api-Key:{key}", id="colon-instead-of-space"),
    pytest.param(lambda key: "Api-Key " + "x" * 200, id="overlong-key"),
    pytest.param(lambda key: "Api-Key nosuchpr.xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", id="unknown-key"),
    pytest.param(lambda key: f"Api-Key {key[:-1]}", id="key-one-char-short"),
    pytest.param(lambda key: f"Api-Key {key.split('.')[0]}.{'0' * 32}", id="wrong-secret"),
    pytest.param(lambda key: "Api-Key Ã©Ã¨", id="mojibake"),
    pytest.param(lambda key: "Api-Key \x00", id="nul"),
    pytest.param(lambda key: f"Api-Key {key.split('.')[0]}\x00.{'0' * 32}", id="nul-in-prefix"),
]


@pytest.mark.parametrize("url", ENDPOINTS)
@pytest.mark.parametrize("authorization", AUTHORIZATION_HEADERS)
def test_a_request_without_a_valid_key_is_not_authenticated(
    store_and_key, state_before, url, authorization
):
    _store, key = store_and_key
    header = authorization(key)
    client = APIClient()
    if header is not None:
        client.credentials(HTTP_AUTHORIZATION=header)

    response = client.post(url, VALID_BODIES[url], format="json")

    assert_refused(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"] == "Api-Key"
    assert database_state() == state_before


@contextmanager
def revoked(api_key: StoreAPIKey):
    store_api_key_revoke(api_key=api_key)
    yield


@contextmanager
def run_out(api_key: StoreAPIKey):
    """The key's end is set in the database, as a manager's shell would; the worker that
    remembers the key sees it at the first use after its memory of the key lapses."""
    api_key.expiry_date = datetime.now(UTC) + timedelta(minutes=1)
    api_key.save(update_fields=["expiry_date"])
    with time_machine.travel(timedelta(minutes=2)):
        yield


@pytest.mark.parametrize("url", ENDPOINTS)
@pytest.mark.parametrize("retired", [revoked, run_out])
def test_a_revoked_or_expired_key_is_not_authenticated(
    store_client, store, state_before, url, retired
):
    # Given a store whose only key was revoked (or ran out) after it reported a purchase
    with retired(StoreAPIKey.objects.get(store=store)):
        # When the storefront calls with it
        response = store_client.post(url, VALID_BODIES[url], format="json")

    # Then it is refused and nothing changes
    assert_refused(response, 401, "not_authenticated")
    assert database_state() == state_before


def test_the_scheme_name_is_case_insensitive(store_and_key):
    # HTTP authentication schemes are case-insensitive (RFC 9110, 11.1).
    _store, key = store_and_key
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"api-key {key}")

    response = client.post(PURCHASE_URL, VALID_BODIES[PURCHASE_URL], format="json")

    assert response.status_code == 201
    assert Purchase.objects.get().order_id == "POS-2"


def test_an_order_id_of_64_allowed_characters_is_accepted(store_client):
    order_id = "A-1.b_2:" * 8

    response = store_client.post(
        PURCHASE_URL, {"phone": PHONE, "order_id": order_id, "amount": "1.00"}, format="json"
    )

    assert response.status_code == 201
    assert response.json()["order_id"] == order_id


# --- the customer's profile ------------------------------------------------------------

PROFILE_URL = "/api/v1/me/profile"

BAD_BIRTHDAYS = [
    pytest.param({"month": 2, "day": 30}, id="30-february"),
    pytest.param({"month": 4, "day": 31}, id="31-april"),
    pytest.param({"month": 2, "day": 29, "year": 1999}, id="29-february-of-no-leap-year"),
    pytest.param({"month": 13, "day": 1}, id="month-13"),
    pytest.param({"month": 0, "day": 1}, id="month-0"),
    pytest.param({"month": 1, "day": 32}, id="day-32"),
    pytest.param({"month": 1, "day": 0}, id="day-0"),
    pytest.param({"month": -1, "day": 1}, id="negative-month"),
    pytest.param({"month": 5, "day": 17, "year": 0}, id="year-0"),
    pytest.param({"month": 5, "day": 17, "year": 1899}, id="year-1899"),
    pytest.param({"month": 12, "day": 31, "year": 9999}, id="year-9999"),
    pytest.param({"month": 5, "day": 17, "year": 10**30}, id="huge-year"),
    pytest.param({"month": 10**30, "day": 17}, id="huge-month"),
    pytest.param({"month": "5", "day": 17}, id="month-as-text"),
    pytest.param({"month": 5.0, "day": 17}, id="month-as-float"),
    pytest.param({"month": True, "day": 17}, id="month-as-bool"),
    pytest.param({"month": "٥", "day": 17}, id="arabic-indic-month"),
    pytest.param({"month": 5, "day": 17, "year": "1990"}, id="year-as-text"),
    pytest.param({"day": 17}, id="no-month"),
    pytest.param({"month": 5}, id="no-day"),
    pytest.param({}, id="empty-object"),
    pytest.param("05-17", id="text"),
    pytest.param([5, 17], id="list"),
    pytest.param(517, id="number"),
]

BAD_NAMES = [
    pytest.param("x" * 151, id="151-chars"),
    pytest.param("", id="empty"),
    pytest.param("   ", id="blank"),
    pytest.param("\u3000", id="ideographic-space"),
    pytest.param("Li\x00Wei", id="nul"),
    pytest.param(7, id="number"),
    pytest.param(None, id="null"),
    pytest.param(["Li Wei"], id="list"),
    pytest.param({"first": "Li"}, id="object"),
]


@pytest.fixture
def customer(db):
    """A customer who reads English, as an app holding their access token."""
    user = User.objects.create_user(phone=PHONE, password="a long passphrase 2026")
    member_link_user(user=user, language="en")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens_for(user)['access']}")
    return client


def profile_state() -> dict:
    return {
        "accounts": list(
            User.objects.order_by("pk").values_list(
                "name", "birthday_month", "birthday_day", "birth_year", "birthday_set_at"
            )
        ),
        "languages": list(Member.objects.order_by("pk").values_list("language", flat=True)),
        "events": MemberEvent.objects.count(),
    }


@pytest.mark.parametrize("birthday", BAD_BIRTHDAYS)
def test_a_bad_birthday_is_a_validation_error_and_changes_nothing(customer, birthday):
    before = profile_state()

    response = customer.patch(
        PROFILE_URL,
        {"name": "Li Wei", "language": "zh-hans", "birthday": birthday},
        format="json",
    )

    assert_refused(response, 400, "validation_error", {"birthday"})
    assert profile_state() == before


def test_a_birthday_in_the_future_is_a_validation_error(customer):
    next_year = timezone.localdate().year + 1

    response = customer.patch(
        PROFILE_URL, {"birthday": {"month": 1, "day": 1, "year": next_year}}, format="json"
    )

    assert_refused(response, 400, "validation_error", {"birthday"})


@pytest.mark.parametrize("name", BAD_NAMES)
def test_a_bad_name_is_a_validation_error_and_changes_nothing(customer, name):
    before = profile_state()

    response = customer.patch(PROFILE_URL, {"name": name, "language": "zh-hans"}, format="json")

    assert_refused(response, 400, "validation_error", {"name"})
    assert profile_state() == before


@pytest.mark.parametrize("body", NON_OBJECT_JSON_BODIES + UNPARSABLE_BODIES)
def test_a_profile_body_that_is_no_json_object_is_a_validation_error(customer, body):
    before = profile_state()

    response = customer.patch(PROFILE_URL, body, content_type="application/json")

    assert_refused(response, 400, "validation_error")
    assert profile_state() == before


def test_a_name_of_150_characters_of_any_script_is_taken(customer):
    name = "李" * 75 + "😀" * 75

    response = customer.patch(PROFILE_URL, {"name": name}, format="json")

    assert response.status_code == 200
    assert User.objects.get(phone=PHONE).name == name
