from io import StringIO

from django.core.management import call_command


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
