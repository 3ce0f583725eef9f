"""A storefront developer who sends the wrong kind of credential, or a key without its
`Api-Key ` prefix, is told which kind the endpoint takes; and an unknown path under
/api/ answers in the JSON error shape, in DEBUG too."""

import re

import pytest
from django.urls import resolve
from rest_framework.test import APIClient

from core.api.authentication import CustomerTokenAuthentication, StoreAPIKeyAuthentication
from tests.api.test_authorization_matrix import ENDPOINTS
from tests.catalog.factories import customer_client

pytestmark = pytest.mark.django_db

PHONE = "+8613800138000"
PATH_PARAMETER = re.compile(r"\{\w+\}")
TAKES_A_STORE_KEY = "This endpoint takes a store's API key: Authorization: Api-Key <key>."
TAKES_A_CUSTOMER_TOKEN = (
    "This endpoint takes a customer's access token: Authorization: Bearer <token>."
)


def endpoints_authenticated_by(authentication_class) -> list[tuple[str, str]]:
    """(method, path) of every API endpoint that takes this credential, ids filled in."""
    found = []
    for method, route in ENDPOINTS:
        path = PATH_PARAMETER.sub("1", route)
        if authentication_class in resolve(path).func.view_class.authentication_classes:
            found.append((method.lower(), path))
    return found


STOREFRONT = endpoints_authenticated_by(StoreAPIKeyAuthentication)
CUSTOMER = endpoints_authenticated_by(CustomerTokenAuthentication)


def call(client, endpoint, authorization=None):
    method, path = endpoint
    if authorization is not None:
        client.credentials(HTTP_AUTHORIZATION=authorization)
    if method == "post":
        return client.post(path, {}, format="json")
    return client.get(path)


def assert_told(response, message):
    assert response.status_code == 401, response.content
    assert response.json() == {
        "error": {"code": "not_authenticated", "message": message, "details": {}}
    }


def test_both_kinds_of_endpoint_are_found():
    assert ("post", "/api/v1/purchases") in STOREFRONT
    assert ("get", "/api/v1/me") in CUSTOMER


@pytest.mark.parametrize("endpoint", STOREFRONT, ids=" ".join)
def test_a_customer_token_on_a_storefront_endpoint_is_told_it_takes_a_store_key(endpoint):
    customer = customer_client(PHONE)

    assert_told(call(customer, endpoint), TAKES_A_STORE_KEY)


@pytest.mark.parametrize("endpoint", STOREFRONT, ids=" ".join)
def test_a_key_without_its_prefix_is_told_the_prefix(endpoint, store_and_key):
    _store, key = store_and_key

    assert_told(call(APIClient(), endpoint, authorization=key), TAKES_A_STORE_KEY)
    assert_told(call(APIClient(), endpoint, authorization=f"Bearer {key}"), TAKES_A_STORE_KEY)


@pytest.mark.parametrize("endpoint", STOREFRONT, ids=" ".join)
def test_no_credential_on_a_storefront_endpoint_is_told_what_to_send(endpoint):
    response = call(APIClient(), endpoint)

    assert_told(response, TAKES_A_STORE_KEY)
    assert response["WWW-Authenticate"] == "Api-Key"


@pytest.mark.parametrize("endpoint", CUSTOMER, ids=" ".join)
def test_a_store_key_on_a_customer_endpoint_is_told_it_takes_a_customer_token(
    endpoint, store_and_key
):
    _store, key = store_and_key

    assert_told(call(APIClient(), endpoint, authorization=f"Api-Key {key}"), TAKES_A_CUSTOMER_TOKEN)


@pytest.mark.parametrize("endpoint", CUSTOMER, ids=" ".join)
def test_a_token_without_bearer_is_told_the_prefix(endpoint):
    token = customer_client(PHONE)._credentials["HTTP_AUTHORIZATION"].removeprefix("Bearer ")

    assert_told(call(APIClient(), endpoint, authorization=token), TAKES_A_CUSTOMER_TOKEN)


def test_a_wrong_key_is_still_called_invalid_not_missing(store_and_key):
    response = call(APIClient(), ("post", "/api/v1/purchases"), authorization="Api-Key nope.nope")

    assert_told(response, "Invalid or revoked API key.")


@pytest.mark.parametrize("path", ["/api/nope", "/api/v1/nope", "/api/v1/purchases/"])
@pytest.mark.parametrize("method", ["get", "post"])
def test_an_unknown_api_path_is_a_json_404_in_debug_too(client, settings, path, method):
    settings.DEBUG = True

    response = getattr(client, method)(path)

    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json() == {
        "error": {"code": "not_found", "message": "Not found.", "details": {}}
    }


def test_an_unknown_page_outside_the_api_keeps_djangos_debug_page(client, settings):
    settings.DEBUG = True

    response = client.get("/nope")

    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


def test_a_path_missing_only_its_slash_is_still_redirected_in_debug(client, settings):
    settings.DEBUG = True

    response = client.get("/api/docs")

    assert (response.status_code, response["Location"]) == (301, "/api/docs/")
