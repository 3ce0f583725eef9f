from io import StringIO

from django.core.management import call_command


def test_the_openapi_schema_generates_and_validates_without_a_single_warning():
    out = StringIO()
    call_command("spectacular", "--validate", "--fail-on-warn", stdout=out, stderr=StringIO())

    assert "/api/v1/purchases" in out.getvalue()
