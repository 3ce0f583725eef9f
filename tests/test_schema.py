import re
from io import StringIO

import phonenumbers
import pytest
from django.core.management import call_command
from rest_framework.exceptions import ValidationError

from accounts.phones import PHONE_INPUT
from catalog.models import RewardOrder
from core.api.fields import AmountField
from core.errors import STATUS_BY_CODE
from loyalty.models import EntryKind, MemberEvent, Redemption


def test_the_openapi_schema_generates_and_validates_without_a_single_warning():
    out = StringIO()
    call_command("spectacular", "--validate", "--fail-on-warn", stdout=out, stderr=StringIO())

    assert "/api/v1/purchases" in out.getvalue()


def test_every_operation_shows_an_example_request_and_answer(client):
    """A storefront developer integrates from the docs alone (docs/api.md)."""
    paths = client.get("/api/schema/?format=json").json()["paths"]

    bare = []
    for path, operations in paths.items():
        for method, operation in operations.items():
            body = operation.get("requestBody", {}).get("content", {}).get("application/json")
            successes = {
                status: answer
                for status, answer in operation["responses"].items()
                if status.startswith("2") and "content" in answer
            }
            if (body and "examples" not in body) or (
                successes
                and not any(
                    "examples" in answer["content"]["application/json"]
                    for answer in successes.values()
                )
            ):
                bare.append(f"{method.upper()} {path}")
    assert bare == []


# --- The schema says what the server checks (issue 14) ---------------------------------


@pytest.fixture
def schema(client):
    return client.get("/api/schema/?format=json").json()


def properties(schema, component: str) -> dict:
    return schema["components"]["schemas"][component]["properties"]


def enum_of(schema, component: str, field: str) -> list[str]:
    reference = properties(schema, component)[field]["$ref"]
    return schema["components"]["schemas"][reference.rpartition("/")[2]]["enum"]


def test_statuses_and_kinds_are_enums_of_what_the_server_answers(schema):
    assert enum_of(schema, "RedemptionOutput", "status") == Redemption.Status.values
    assert enum_of(schema, "RewardOrderOutput", "status") == RewardOrder.Status.values
    assert enum_of(schema, "TransactionOutput", "kind") == EntryKind.values
    for component in ("EventOutput", "CheckinOutput", "MemberEventOutput"):
        assert enum_of(schema, component, "outcome") == MemberEvent.Outcome.values
    assert enum_of(schema, "ErrorDetail", "code") == sorted(STATUS_BY_CODE)


AMOUNTS_ABOVE_ZERO = [
    ("PurchaseInput", "amount"),
    ("RefundInput", "amount"),
    ("QuoteInput", "order_total"),
    ("RedemptionInput", "order_total"),
]
MONEY_ANSWERED = [
    ("QuoteOutput", "max_discount"),
    ("RedemptionOutput", "discount"),
    ("CatalogItemOutput", "cash_price"),
    ("RewardOrderOutput", "cash_due"),
]


# What AmountField takes, as the schema must say (leaving out the leading zeros it also takes).
AMOUNT_SAMPLES = {
    "300.00": True,
    "300": True,
    "0.5": True,
    "0.01": True,
    "9999999999.99": True,
    "0": False,
    "0.00": False,
    "-1.00": False,
    "1.999": False,
    "10000000000": False,
    "١٢": False,
    "1e3": False,
}


def test_the_amount_samples_are_what_the_server_takes():
    for value, taken in AMOUNT_SAMPLES.items():
        try:
            AmountField().to_internal_value(value)
        except ValidationError:
            assert not taken, value
        else:
            assert taken, value


@pytest.mark.parametrize(("component", "field"), AMOUNTS_ABOVE_ZERO)
def test_an_amount_sent_is_a_decimal_string_above_zero_with_at_most_two_decimals(
    schema, component, field
):
    amount = properties(schema, component)[field]

    assert amount["type"] == "string"
    assert amount["format"] == "decimal"
    matches = {value: bool(re.search(amount["pattern"], value)) for value in AMOUNT_SAMPLES}
    assert matches == AMOUNT_SAMPLES


@pytest.mark.parametrize(("component", "field"), MONEY_ANSWERED)
def test_money_answered_is_a_decimal_string_with_two_decimals(schema, component, field):
    money = properties(schema, component)[field]

    assert (money["type"], money["format"]) == ("string", "decimal")
    assert re.search(money["pattern"], "300.00")
    assert not any(re.search(money["pattern"], value) for value in ("300", "3.5", "-3.50", ""))


def phone_fields(schema) -> list[dict]:
    return [
        field
        for component in schema["components"]["schemas"].values()
        for name, field in component.get("properties", {}).items()
        if name == "phone" and "pattern" in field
    ]


def test_a_phone_sent_has_the_shape_and_the_least_length_the_server_takes(schema):
    phones = phone_fields(schema)
    # Every input with a phone: purchases, lookups, quotes, holds, reward orders, the auth calls
    assert len(phones) >= 9
    assert all(phone == phones[0] for phone in phones)
    phone = phones[0]
    pattern = re.compile(phone["pattern"])

    # Then it has the shape PHONE_INPUT lets through, and a least length
    assert phone["pattern"] == f"^{PHONE_INPUT.pattern}$"
    assert phone["minLength"] == 8

    # And every mobile number the server takes, of any region, the schema takes too
    for region in phonenumbers.SUPPORTED_REGIONS:
        example = phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.MOBILE)
        if example is None:
            continue
        for written in (
            phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164),
            phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.INTERNATIONAL),
        ):
            assert pattern.search(written) and len(written) >= phone["minLength"], written
    national = phonenumbers.example_number_for_type("CN", phonenumbers.PhoneNumberType.MOBILE)
    written = phonenumbers.format_number(national, phonenumbers.PhoneNumberFormat.NATIONAL)
    assert pattern.search(written) and len(written) >= phone["minLength"], written


@pytest.mark.parametrize(
    ("component", "field"),
    [
        ("SignupInput", "password"),
        ("TokenInput", "password"),
        ("PasswordResetInput", "new_password"),
    ],
)
def test_a_password_sent_has_the_length_django_asks_for_and_no_nul(schema, component, field):
    password = properties(schema, component)[field]

    assert password["minLength"] == 8
    assert re.search(password["pattern"], "a long passphrase")
    assert not re.search(password["pattern"], "a long\x00passphrase")


@pytest.mark.parametrize(
    ("component", "field"),
    [("RefreshInput", "refresh"), ("PickupCodeInput", "code"), ("PatchedProfileInput", "name")],
)
def test_a_token_code_or_name_sent_refuses_nul_and_blanks(schema, component, field):
    token = properties(schema, component)[field]

    assert re.search(token["pattern"], " K7MW-3RXA ")
    for refused in ("eyJ\x00", " ", "\t\n", "\u3000", "\x1c"):
        assert not re.search(token["pattern"], refused), repr(refused)


def test_the_store_key_scheme_says_its_prefix(schema):
    scheme = schema["components"]["securitySchemes"]["StoreApiKey"]

    assert (scheme["type"], scheme["in"], scheme["name"]) == ("apiKey", "header", "Authorization")
    assert "`Authorization: Api-Key <key>`" in scheme["description"]


def test_request_bodies_are_named_as_their_serializers(schema):
    names = set(schema["components"]["schemas"])

    assert {"PurchaseInput", "RedemptionInput", "SignupInput"} <= names
    assert [name for name in names if name.endswith("Request")] == []
