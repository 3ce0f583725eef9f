"""Hostile input to every operation of the API (issue 13): never a 5xx, and every refusal
in the error shape.

The operations, their parameters and their example bodies come from the OpenAPI schema,
so a new endpoint is tried without editing this file. Each is called with a store key, a
customer token and no credentials. The input classes of tests/hostile_input.py go into
every path, query and header parameter the schema declares; into a query parameter no
operation reads; into forged credentials of either scheme; into every field of the
example bodies and a key beside them (on every operation: anyone may send a body); and,
as DRF cursors, into a cursor's position, offset and direction. A table of known culprits
runs first; Hypothesis then draws more of each class.
"""

import re
from dataclasses import dataclass, field

import pytest
from django.core.cache import cache
from django.test import Client
from drf_spectacular.generators import SchemaGenerator
from hypothesis import given
from hypothesis import strategies as st
from rest_framework.test import APIClient

from tests import hostile_input as hostile
from tests.catalog.factories import PASSWORD, customer_client
from tests.factories import earn

PHONE = "+8613800138000"
SCHEMA = SchemaGenerator().get_schema(request=None, public=True)
OPERATIONS = [
    pytest.param(method.upper(), route, operation, id=f"{method.upper()} {route}")
    for route, operations in SCHEMA["paths"].items()
    for method, operation in operations.items()
]
IDENTITIES = ["no credentials", "store key", "customer token"]
# What the identities' Authorization headers start with; forged ones follow the scheme.
CREDENTIAL_SCHEMES = ["Api-Key", "Bearer"]
# A query parameter that no operation reads: whatever parses a query string sees it.
UNREAD_PARAMETER = "x"
PATH_PARAMETER = re.compile(r"\{(\w+)\}")


@dataclass
class Call:
    label: str
    path_parameters: dict[str, str] = field(default_factory=dict)
    query: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None


class Operation:
    """What the schema says of one operation: its parameters and example bodies."""

    def __init__(self, route: str, definition: dict):
        self.route = route
        parameters = definition.get("parameters", [])
        self.path_parameters = PATH_PARAMETER.findall(route)
        self.query_parameters = [p["name"] for p in parameters if p["in"] == "query"]
        self.query_parameters.append(UNREAD_PARAMETER)
        self.header_parameters = [p["name"] for p in parameters if p["in"] == "header"]
        content = definition.get("requestBody", {}).get("content", {}).get("application/json")
        examples = (content or {}).get("examples", {}).values()
        self.bodies = [example["value"] for example in examples] or [{}]

    def url(self, call: Call) -> str:
        path = PATH_PARAMETER.sub(lambda name: call.path_parameters.get(name[1], "1"), self.route)
        return f"{path}?{call.query}" if call.query else path

    def table(self) -> list[Call]:
        """The known culprits, each in every place this operation takes input."""
        calls = [
            Call(f"path {name}={value}", path_parameters={name: value})
            for name in self.path_parameters
            for value in hostile.URL_VALUES
        ]
        calls += [
            Call(f"query {name}={value}", query=f"{name}={value}")
            for name in self.query_parameters
            for value in [*hostile.URL_VALUES, *hostile.cursors(hostile.URL_VALUES)]
        ]
        calls += [
            Call(f"header {name}: {value!r}", headers={name: value})
            for name in self.header_parameters
            for value in hostile.HEADER_VALUES
        ]
        calls += [
            Call(f"credentials {value!r}", headers={"Authorization": value})
            for scheme in CREDENTIAL_SCHEMES
            for value in (f"{scheme} {credential}" for credential in hostile.HEADER_VALUES)
        ]
        for body in self.bodies:
            calls += [
                Call(f"body {key}={value!r}", body=hostile.json_body({**body, key: value}))
                for key in body
                for value in hostile.JSON_STRINGS
            ]
            calls += [
                Call(f"body key {key!r}", body=hostile.json_body({**body, key: "1"}))
                for key in hostile.LONE_SURROGATES
            ]
            calls.append(
                Call(
                    "body nested",
                    body=hostile.json_body({**body, "x": [{"\ud800": ["\udfff"]}]}),
                )
            )
        return calls


@st.composite
def drawn_calls(draw, operation: Operation) -> Call:
    """One place of the operation's input, and a value Hypothesis draws for it."""
    places = [
        *(("path", name) for name in operation.path_parameters),
        *(("query", name) for name in operation.query_parameters),
        *(("header", name) for name in operation.header_parameters),
        *(("credentials", scheme) for scheme in CREDENTIAL_SCHEMES),
        *(("body", body) for body in operation.bodies),
    ]
    place, where = draw(st.sampled_from(places))
    if place == "path":
        value = draw(hostile.url_values)
        return Call(f"path {where}={value}", path_parameters={where: value})
    if place == "query":
        value = draw(st.one_of(hostile.url_values, hostile.url_values.map(cursor_of)))
        return Call(f"query {where}={value}", query=f"{where}={value}")
    if place == "header":
        value = draw(hostile.header_values)
        return Call(f"header {where}: {value!r}", headers={where: value})
    if place == "credentials":
        value = f"{where} {draw(hostile.header_values)}"
        return Call(f"credentials {value!r}", headers={"Authorization": value})
    key = draw(st.sampled_from([*where, None]))
    value = draw(hostile.hostile_text)
    document = {**where, key: value} if key is not None else {**where, value: "1"}
    return Call(f"body {key!r}: {value!r}", body=hostile.json_body(document))


def cursor_of(value: str) -> str:
    return hostile.cursors([value])[0]


@pytest.fixture
def credentials(db, settings, store_and_key):
    """The headers of each identity: a store's key, a signed-up customer's token, none."""
    # Argon2 takes a tenth of a second a hash by design; these tests are about parsing.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    store, key = store_and_key
    earn(store=store, phone=PHONE, amount="300.00", order_id="POS-2026-0001")
    customer_client(PHONE)
    login = APIClient().post(
        "/api/v1/auth/token", {"phone": PHONE, "password": PASSWORD}, format="json"
    )
    return {
        "no credentials": {},
        "store key": {"Authorization": f"Api-Key {key}"},
        "customer token": {"Authorization": f"Bearer {login.json()['access']}"},
    }


def fault(client: Client, method: str, operation: Operation, call: Call, identity: dict):
    """What is wrong with the answer to `call`, or None: a 5xx, or a refusal that is not
    the error shape."""
    # Each call starts with fresh limits, so none is refused for the calls before it.
    cache.clear()
    response = client.generic(
        method,
        operation.url(call),
        data=call.body or b"",
        content_type="application/json",
        headers={**identity, **call.headers},
    )
    if response.status_code >= 500:
        return f"{call.label}: {response.status_code}"
    if response.status_code >= 400 and not in_error_shape(response):
        return f"{call.label}: {response.status_code} not in the error shape: {response.content!r}"
    return None


def in_error_shape(response) -> bool:
    if response.get("Content-Type") != "application/json":
        return False
    body = response.json()
    return (
        isinstance(body, dict)
        and set(body) == {"error"}
        and isinstance(body["error"], dict)
        and set(body["error"]) == {"code", "message", "details"}
        and isinstance(body["error"]["code"], str)
        and isinstance(body["error"]["message"], str)
        and body["error"]["message"] != ""
        and isinstance(body["error"]["details"], dict)
    )


@pytest.mark.parametrize("identity", IDENTITIES)
@pytest.mark.parametrize(("method", "route", "definition"), OPERATIONS)
def test_known_hostile_input_is_refused_in_the_error_shape(
    credentials, identity, method, route, definition
):
    # Given one operation, called as one identity with each known culprit in each place
    operation = Operation(route, definition)
    client = Client(raise_request_exception=False)

    answers = [
        fault(client, method, operation, call, credentials[identity]) for call in operation.table()
    ]

    # Then none is a server error, and every refusal is in the error shape
    faults = [answer for answer in answers if answer]
    assert not faults, "\n".join(faults)


@pytest.mark.parametrize(("method", "route", "definition"), OPERATIONS)
@hostile.fuzz_settings
@given(data=st.data())
def test_drawn_hostile_input_is_refused_in_the_error_shape(
    credentials, method, route, definition, data
):
    operation = Operation(route, definition)
    identity = data.draw(st.sampled_from(IDENTITIES), label="identity")
    call = data.draw(drawn_calls(operation), label="call")

    problem = fault(
        Client(raise_request_exception=False), method, operation, call, credentials[identity]
    )

    assert problem is None


@pytest.mark.parametrize(
    "body",
    [
        # The attacker's request, with no login
        pytest.param(b'{"phone":"13800138000","purpose":"\\ud800"}', id="in-a-value"),
        pytest.param(b'{"phone":"13800138000","purpose":"signup","\\udfff":1}', id="in-a-key"),
        pytest.param(
            b'{"phone":"13800138000","purpose":"signup","x":[{"y":"a\\udc00"}]}', id="nested"
        ),
    ],
)
def test_a_lone_surrogate_anywhere_in_the_json_makes_it_malformed(db, sms_outbox, body):
    response = Client().post("/api/v1/auth/sms-codes", body, content_type="application/json")

    assert response.status_code == 400
    assert in_error_shape(response)
    assert response.json()["error"]["code"] == "validation_error"
    assert sms_outbox == []


def test_a_whole_surrogate_pair_is_a_character_like_any_other(db):
    # An emoji written as its escaped UTF-16 pair, in a field the endpoint ignores
    body = b'{"phone":"13800138000","purpose":"signup","note":"\\ud83d\\ude00"}'

    response = Client().post("/api/v1/auth/sms-codes", body, content_type="application/json")

    assert response.status_code == 202
