"""Schemathesis against the application's own OpenAPI schema (issue 7).

Every operation of /api/schema/ is called with generated requests (the docs' examples,
the coverage phase's boundary and schema-breaking values, then random ones) once with a
store key and once with a customer token, through the WSGI application in this process.
Each call must not be a 5xx, its status must be one the schema lists, its body and
content type must match the schema, and an operation that needs credentials must refuse
the same request without them or with made-up ones (schemathesis' `ignored_auth`), and
the other kind of credentials too. A request the schema calls valid must not be refused as
invalid (400; schemathesis' `positive_data_acceptance`), except for the few fields whose
validity no schema can say (NOT_EXPRESSIBLE_IN_THE_SCHEMA): so a client generated from the
schema checks what the server checks.

Each operation and identity gets a database of its own: pytest-django's `transactional_db`
with reset sequences, flushed after the test. Not `db`: a request through the WSGI
application ends, as behind gunicorn, with Django closing a connection it finds inside a
transaction, so a `db` test's transaction would not outlive the first call. And a request
here is not one transaction, as in production: `durable=True` services, on-commit tasks and
row locks behave as they do there, and one request's database error cannot abort every
case after it (on which Hypothesis would shrink towards the wrong example). The generated
cases of one test share its database, so a purchase may be refunded, replayed or conflicted
with by the cases after it. It holds the world of the docs' examples: their member with
points, their purchase, item 3, the custom event type review_written, and a held
redemption and a pending reward order (id 1) that the examples are pointed at.

CI runs a fixed, derandomized sample (SCHEMATHESIS_MAX_EXAMPLES, default 25, per operation
and identity); a bigger number explores more, e.g. SCHEMATHESIS_MAX_EXAMPLES=1000.
"""

import os
from decimal import Decimal

import pytest
import schemathesis
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from rest_framework.test import APIClient
from schemathesis.openapi.checks import RejectedPositiveData

from catalog import services as catalog_services
from catalog.services import reward_order_place
from config.wsgi import application
from loyalty.models import EventRule, Member
from loyalty.services.erasure import customer_erase
from loyalty.services.redemptions import redemption_hold
from loyalty.services.stores import store_create
from tests.catalog.factories import PASSWORD, RewardItemFactory, customer_client
from tests.factories import earn

# The member, purchase and pickup code of the docs' examples.
PHONE = "+8613800138000"
EXAMPLE_ORDER_ID = "POS-2026-0001"
EXAMPLE_PICKUP_CODE = "K7MW3RXA"
# With sequences reset, the seeded redemption and reward order are the first of their kind.
SEEDED_ID = "1"
PATH_PARAMETERS_OF_SEEDED_OBJECTS = {
    "/api/v1/purchases/{order_id}/refunds": {"order_id": EXAMPLE_ORDER_ID},
    "/api/v1/redemptions/{redemption_id}": {"redemption_id": SEEDED_ID},
    "/api/v1/redemptions/{redemption_id}/commit": {"redemption_id": SEEDED_ID},
    "/api/v1/redemptions/{redemption_id}/cancel": {"redemption_id": SEEDED_ID},
    "/api/v1/reward-orders/{order_id}": {"order_id": SEEDED_ID},
    "/api/v1/reward-orders/{order_id}/cancel": {"order_id": SEEDED_ID},
    "/api/v1/me/reward-orders/{order_id}/cancel": {"order_id": SEEDED_ID},
}
STORE_KEY = "store key"
CUSTOMER_TOKEN = "customer token"
SCHEME_OF_IDENTITY = {STORE_KEY: "StoreApiKey", CUSTOMER_TOKEN: "CustomerToken"}
SCHEME_OF_PREFIX = {"Api-Key": "StoreApiKey", "Bearer": "CustomerToken"}

# The only fields a request the schema calls valid may still be refused for (400), because
# their validity cannot be written in a JSON Schema; each with the reason.
NOT_EXPRESSIBLE_IN_THE_SCHEMA = {
    "phone": "a number of the right shape may be no mobile number (a landline, a block not "
    "handed out), and codes are texted only to numbers of SMS_ALLOWED_REGIONS",
    "password": "besides the length, Django's validators refuse common passwords, passwords "
    "of digits only and passwords like the phone number",
    "cursor": "only a cursor the server handed out in a `next` link is valid",
    "lines": "a basket's lines must add up to the purchase's amount, each line_id once; a "
    "refund names its amount or its lines, and each line its quantity or its amount: rules "
    "across fields and lines (a refusal of one line's own field is still caught)",
    "birthday": "the day must be one its month has (no 30 February, 29 February only in a "
    "leap year), a year must not be in the future, and a birthday once set is not removed "
    "(null): rules across the fields, the clock and the customer's profile",
    "occurred_at": "an event's time may be at most 5 minutes ahead of the server's clock and "
    "not before 2000, and Python reads no leap second (23:59:60): bounds no date-time format "
    "has",
}

MAX_EXAMPLES = int(os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "25"))
CONFIG = schemathesis.Config.from_dict(
    {
        "seed": 2026,
        "generation": {"deterministic": True, "max-examples": MAX_EXAMPLES, "database": "none"},
        # The schema declares no OpenAPI links, so a stateful run would have nothing to chain.
        "phases": {"stateful": {"enabled": False}},
        "checks": {
            "enabled": False,
            "not_a_server_error": {"enabled": True},
            "positive_data_acceptance": {
                "enabled": True,
                # Anything but 400. A 422 refuses what the data asks for (more points than
                # the balance), not the data; 5xx is not_a_server_error's to judge.
                "expected-statuses": ["2xx", "401", "403", "404", "409", "422", "429", "5xx"],
            },
            "status_code_conformance": {"enabled": True},
            "content_type_conformance": {"enabled": True},
            "response_schema_conformance": {"enabled": True},
            "ignored_auth": {"enabled": True},
        },
    }
)
schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", application, config=CONFIG)


@schema.hook
def before_add_examples(context, examples):
    """Point the docs' examples at the seeded objects, so that every operation answers
    2xx at least once and `ignored_auth` gets to check it."""
    seeded = PATH_PARAMETERS_OF_SEEDED_OBJECTS.get(context.operation.path)
    if seeded is None:
        return
    for case in examples:
        case.path_parameters.update(seeded)
    if not examples:
        examples.append(context.operation.Case(path_parameters=dict(seeded)))


@schema.hook
def filter_failure(context, failure, case, response):
    """Drop only positive_data_acceptance's failures for a 400 whose details name nothing but
    fields of NOT_EXPRESSIBLE_IN_THE_SCHEMA."""
    if not isinstance(failure, RejectedPositiveData) or response.status_code != 400:
        return True
    details = response.json()["error"]["details"]
    refused_fields = set(details)
    if not refused_fields or not refused_fields <= NOT_EXPRESSIBLE_IN_THE_SCHEMA.keys():
        return True
    # A basket's own rules answer sentences; a line's field refused answers an object per line.
    return not all(isinstance(message, str) for message in details.get("lines", []))


def required_schemes(operation) -> set[str]:
    """The security schemes the schema says the operation needs; empty for none."""
    return {
        name for requirement in operation.definition.raw.get("security", []) for name in requirement
    }


class Callers:
    """The credentials of the seeded world, and what one operation answered with them."""

    def __init__(self, *, store_key: str, access_token: str):
        self.authorization = {
            STORE_KEY: f"Api-Key {store_key}",
            CUSTOMER_TOKEN: f"Bearer {access_token}",
        }
        self.answers = []

    def record(self, *, operation, identity: str, status: int) -> None:
        self.answers.append((operation, identity, status))

    def assert_the_right_caller_got_through(self) -> None:
        """An operation needing credentials that never answered 2xx to the right caller
        would have left ignored_auth and its success body unchecked."""
        if not self.answers:
            return
        operation, identity, _status = self.answers[0]
        if SCHEME_OF_IDENTITY[identity] not in required_schemes(operation):
            return
        statuses = sorted({status for *_, status in self.answers})
        assert any(200 <= status < 300 for status in statuses), (
            f"{operation.label} never answered 2xx to the {identity}: {statuses}"
        )


@pytest.fixture
def callers(django_db_reset_sequences, settings, monkeypatch, tmp_path, request):
    # Argon2 takes a tenth of a second a hash by design; these tests are about the API.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.MEDIA_ROOT = tmp_path
    store, key = store_create(name="Web shop")
    earn(store=store, phone=PHONE, amount="300.00", order_id=EXAMPLE_ORDER_ID)
    earn(store=store, phone=PHONE, amount="5000.00", order_id="POS-2026-0000")
    RewardItemFactory(points=100, image=SimpleUploadedFile("mug.png", b"a picture"))
    RewardItemFactory(points=500, stock=0)
    tote_bag = RewardItemFactory(
        name="Canvas tote bag", points=800, cash_price=Decimal("10.00"), stock=50
    )
    # The built-in event rules of the data migration are there in the first test only (the
    # flush after it takes them), with ids the reset sequences hand out again: every test
    # starts without them, as all but the first would.
    EventRule.objects.all().delete()
    EventRule.objects.create(
        event_type="review_written", name_en="Review written", name_zh="写评价", points=20
    )
    customer_client(PHONE)
    member = Member.objects.get(phone=PHONE)
    redemption_hold(
        store=store,
        member=member,
        order_id="POS-2026-0003",
        order_total=Decimal("80.00"),
        points=500,
    )
    with monkeypatch.context() as patch:
        patch.setattr(catalog_services, "_new_code", lambda: EXAMPLE_PICKUP_CODE)
        reward_order_place(member=member, item_id=tote_bag.pk, quantity=1, store=store)
    login = APIClient().post(
        "/api/v1/auth/token", {"phone": PHONE, "password": PASSWORD}, format="json"
    )
    callers = Callers(store_key=key, access_token=login.json()["access"])
    # Signing up spent the phone's SMS cap; the calls under test start afresh.
    cache.clear()
    failures_before = request.session.testsfailed
    yield callers
    # After a failing case, that failure is the news; an operation cut short proves nothing.
    if request.session.testsfailed == failures_before:
        callers.assert_the_right_caller_got_through()


def refuses_the_other_kind_of_credentials(ctx, response, case):
    """A customer token never opens a store's operation, nor a store key a customer's."""
    sent = response.request.headers.get("Authorization", "")
    sent_scheme = SCHEME_OF_PREFIX.get(sent.partition(" ")[0])
    required = required_schemes(case.operation)
    if sent_scheme and required and sent_scheme not in required:
        assert not 200 <= response.status_code < 300, (
            f"{case.operation.label} answered {response.status_code} to a {sent_scheme}"
        )


@schema.parametrize()
# The world is built once per operation and identity, on purpose; and a busy CI machine
# generating slowly is no failure of the API.
@hypothesis_settings(
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@pytest.mark.parametrize("identity", [STORE_KEY, CUSTOMER_TOKEN])
def test_every_operation_keeps_to_the_schema_and_its_credentials(case, identity, callers):
    response = case.call_and_validate(
        headers={"Authorization": callers.authorization[identity]},
        additional_checks=[refuses_the_other_kind_of_credentials],
    )
    # The coverage phase also probes methods the operation does not have (405, or 200 for
    # OPTIONS): those say nothing about the operation itself.
    if case.method.upper() == case.operation.method.upper():
        callers.record(operation=case.operation, identity=identity, status=response.status_code)


@pytest.mark.django_db(transaction=True)
def test_the_answers_about_an_erased_customers_purchases_orders_and_holds_keep_to_the_schema():
    # Given a customer with a purchase, two pending reward orders and a held redemption,
    # whose personal data is then erased: the member and all of these stay, without a phone
    store, key = store_create(name="Web shop")
    earn(store=store, phone=PHONE, amount="300.00", order_id=EXAMPLE_ORDER_ID)
    member = Member.objects.get(phone=PHONE)
    item = RewardItemFactory(points=100)
    to_fulfil, to_cancel = (
        reward_order_place(member=member, item_id=item.pk, quantity=1, store=store)
        for _ in range(2)
    )
    redemption = redemption_hold(
        store=store,
        member=member,
        order_id="POS-2026-0003",
        order_total=Decimal("80.00"),
        points=100,
    )
    customer_erase(member_id=member.pk)
    calls = [
        (
            "/api/v1/purchases/{order_id}/refunds",
            {"order_id": EXAMPLE_ORDER_ID},
            {"refund_id": "R-1", "amount": "100.00"},
        ),
        ("/api/v1/redemptions/{redemption_id}/commit", {"redemption_id": redemption.pk}, None),
        ("/api/v1/redemptions/{redemption_id}/cancel", {"redemption_id": redemption.pk}, None),
        ("/api/v1/reward-orders/fulfil", {}, {"code": to_fulfil.code}),
        ("/api/v1/reward-orders/{order_id}/cancel", {"order_id": to_cancel.pk}, None),
    ]

    for path, path_parameters, body in calls:
        # When the store carries on with them
        case = schema[path]["POST"].Case(
            path_parameters=path_parameters,
            **({"body": body, "media_type": "application/json"} if body else {}),
        )
        response = case.call_and_validate(headers={"Authorization": f"Api-Key {key}"})

        # Then each answer names no one and still keeps to the schema
        assert response.status_code in (200, 201), response.text
        assert response.json()["member"]["phone"] is None


@pytest.mark.django_db(transaction=True)
def test_a_phone_out_of_code_guesses_gets_an_answer_the_schema_lists(settings):
    # Given a phone that has sent as many wrong codes as it may in an hour
    wrong_code = {"phone": PHONE, "code": "000000"}
    signup = schema["/api/v1/auth/signup"]["POST"].Case(
        body={**wrong_code, "password": PASSWORD}, media_type="application/json"
    )
    for _ in range(settings.SMS_CODE_WRONG_GUESSES_PER_PHONE_PER_HOUR):
        assert signup.call_and_validate().status_code == 422

    # When it sends another, to sign up or to reset its password
    reset = schema["/api/v1/auth/password-reset"]["POST"].Case(
        body={**wrong_code, "new_password": PASSWORD}, media_type="application/json"
    )
    for case in (signup, reset):
        response = case.call_and_validate()

        # Then the answer is a 429, as the schema says it may be
        assert response.status_code == 429
