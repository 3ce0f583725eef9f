"""What a storefront developer and an operator reach without a key: the OpenAPI schema,
the interactive docs (offline), the health check, and the API's 404."""

import json
import re
from html.parser import HTMLParser

import pytest
import yaml
from django.contrib.staticfiles import finders

from core import health

pytestmark = pytest.mark.django_db

STOREFRONT_ERRORS = {
    "/api/v1/purchases": {"400", "401", "409"},
    "/api/v1/purchases/{order_id}/refunds": {"400", "401", "404", "409", "422"},
    "/api/v1/members/lookup": {"400", "401", "404"},
}
STOREFRONT_SUCCESSES = {
    "/api/v1/purchases": {"200", "201"},
    "/api/v1/purchases/{order_id}/refunds": {"200", "201"},
    "/api/v1/members/lookup": {"200"},
}


class AssetCollector(HTMLParser):
    """The URLs a browser would fetch for the page's scripts, styles and icons."""

    def __init__(self):
        super().__init__()
        self.urls = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "script" and attrs.get("src"):
            self.urls.append(attrs["src"])
        if tag == "link" and attrs.get("href"):
            self.urls.append(attrs["href"])


@pytest.fixture
def schema(client):
    response = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    return json.loads(response.content)


def test_the_schema_is_openapi_3_in_yaml_by_default(client):
    response = client.get("/api/schema/")

    assert response.status_code == 200
    document = yaml.safe_load(response.content)
    assert document["openapi"].startswith("3.")
    assert set(STOREFRONT_ERRORS) <= set(document["paths"])


def test_the_schema_lists_the_storefront_endpoints_with_their_answers(schema):
    for path, errors in STOREFRONT_ERRORS.items():
        operation = schema["paths"][path]["post"]
        assert set(operation["responses"]) == STOREFRONT_SUCCESSES[path] | errors, path
        for status in errors:
            content = operation["responses"][status]["content"]["application/json"]
            assert content["schema"] == {"$ref": "#/components/schemas/ErrorOutput"}, (path, status)


def test_the_error_shape_and_every_error_code_are_documented(schema):
    schemas = schema["components"]["schemas"]
    assert schemas["ErrorOutput"]["properties"]["error"] == {
        "$ref": "#/components/schemas/ErrorDetail"
    }
    detail = schemas["ErrorDetail"]
    assert set(detail["required"]) == {"code", "message", "details"}
    codes = set(schemas[detail["properties"]["code"]["$ref"].rsplit("/", 1)[1]]["enum"])
    assert {
        "validation_error",
        "invalid_phone",
        "not_authenticated",
        "not_found",
        "idempotency_conflict",
        "refund_exceeds_purchase",
        "unsupported_media_type",
    } <= codes


def test_the_storefront_endpoints_ask_for_the_store_key(schema):
    schemes = schema["components"]["securitySchemes"]
    for path in STOREFRONT_ERRORS:
        (requirement,) = schema["paths"][path]["post"]["security"]
        (name,) = requirement
        assert schemes[name] == {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": schemes[name]["description"],
        }
        assert "Api-Key" in schemes[name]["description"]


def test_the_purchase_and_refund_endpoints_document_the_idempotency_key(schema):
    for path in ["/api/v1/purchases", "/api/v1/purchases/{order_id}/refunds"]:
        parameters = schema["paths"][path]["post"]["parameters"]
        assert {"in": "header", "name": "Idempotency-Key"}.items() <= next(
            p for p in parameters if p["name"] == "Idempotency-Key"
        ).items()


def test_the_docs_page_loads_only_local_assets(client):
    # Given the interactive docs page
    response = client.get("/api/docs/")

    # Then it is HTML whose scripts and styles all come from this server
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    page = response.content.decode()
    collector = AssetCollector()
    collector.feed(page)
    assert collector.urls, "the docs page loads no assets at all"
    for url in collector.urls:
        assert not re.match(r"^(https?:)?//", url), f"{url} is fetched from another host"
    assert re.search(r'url:\s*"/api/schema/"', page)

    # And every one of those assets is served, the Swagger UI bundle included
    bundle = [url for url in collector.urls if url.endswith("swagger-ui-bundle.js")]
    assert len(bundle) == 1
    for url in collector.urls:
        asset = client.get(url)
        assert asset.status_code == 200, url
        assert b"".join(asset.streaming_content), url
    assert client.get(bundle[0])["Content-Type"].startswith("text/javascript")


def test_health_reports_the_database_and_the_broker(client):
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"database": "ok", "broker": "ok"}


def test_health_names_the_broker_when_it_is_down(client, monkeypatch):
    # Given a broker that cannot be reached
    def unreachable(*args, **kwargs):
        raise ConnectionRefusedError("no broker here")

    monkeypatch.setattr(health.celery_app, "connection_for_write", unreachable)

    # When the health check runs
    response = client.get("/healthz")

    # Then it answers 503 and says which part is down
    assert response.status_code == 503
    assert response.json() == {"database": "ok", "broker": "unreachable"}


@pytest.mark.parametrize(
    "path", ["/api/nope", "/api/v1/nope", "/api/v1/purchases/", "/api/v2/purchases"]
)
@pytest.mark.parametrize("method", ["get", "post"])
def test_an_unknown_api_path_is_a_404_in_the_error_shape(client, path, method):
    response = getattr(client, method)(path)

    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json() == {
        "error": {"code": "not_found", "message": "Not found.", "details": {}}
    }


def test_an_unknown_page_outside_the_api_is_not_json(client):
    response = client.get("/nope")

    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


def test_the_docs_page_does_not_call_the_online_validator(client):
    # Swagger UI otherwise shows a badge image fetched from validator.swagger.io,
    # which breaks offline and hands the schema's URL to a third party.
    page = client.get("/api/docs/").content.decode()

    settings_json = re.search(r"const swaggerSettings = (\{.*?\});", page, re.DOTALL).group(1)
    assert json.loads(settings_json).get("validatorUrl", "default") is None


def test_the_admin_and_the_api_docs_show_the_products_icon(client):
    login_page = client.get("/admin/login/").content.decode()
    icon = client.get("/favicon.ico")

    assert '<link rel="icon" href="/static/accounts/favicon.svg"' in login_page
    assert (icon.status_code, icon["Location"]) == (302, "/static/accounts/favicon.svg")
    assert finders.find("accounts/favicon.svg") is not None
