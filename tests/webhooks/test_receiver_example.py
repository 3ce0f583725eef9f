"""The receiver docs/webhooks.md shows storefront developers works as it says: it takes
a signed request, with either secret while a rotation overlaps, and refuses others."""

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from django.conf import settings
from django.test import RequestFactory
from standardwebhooks import Webhook

from webhooks.models import secret_new

DOCS = Path(settings.BASE_DIR) / "docs/webhooks.md"
BODY = b'{"type":"webhook.test","timestamp":"2026-12-03T12:15:04.123456+00:00","data":{}}'
MESSAGE_ID = "msg_5c383fff2545420c9f27e3845b6e4ebf"


@pytest.fixture
def receiver():
    """The documented Django view, run with the secret its settings hold."""
    source = re.search(r"```python\n(.*?def loyalty_webhook.*?)```", DOCS.read_text(), re.S)[1]
    received = []
    namespace = {"remember_for_later": received.append}
    exec(compile(source, str(DOCS), "exec"), namespace)
    return namespace["loyalty_webhook"], received


def post(*signing_secrets: str, body: bytes = BODY):
    now = datetime.now(UTC)
    signatures = " ".join(Webhook(secret).sign(MESSAGE_ID, now, BODY) for secret in signing_secrets)
    return RequestFactory().post(
        "/loyalty-webhook",
        body,
        content_type="application/json",
        headers={
            "webhook-id": MESSAGE_ID,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": signatures,
        },
    )


def test_a_signed_request_is_taken(receiver, settings):
    view, received = receiver
    settings.LOYALTY_WEBHOOK_SECRET = secret_new()

    response = view(post(settings.LOYALTY_WEBHOOK_SECRET))

    assert response.status_code == 204
    assert received == [
        {"type": "webhook.test", "timestamp": "2026-12-03T12:15:04.123456+00:00", "data": {}}
    ]


def test_the_old_secret_still_verifies_while_both_sign(receiver, settings):
    view, received = receiver
    old, new = secret_new(), secret_new()
    settings.LOYALTY_WEBHOOK_SECRET = old

    assert view(post(new, old)).status_code == 204
    assert len(received) == 1


@pytest.mark.parametrize("case", ["another secret", "a changed body"])
def test_a_forged_or_changed_request_is_refused(receiver, settings, case):
    view, received = receiver
    settings.LOYALTY_WEBHOOK_SECRET = secret_new()
    if case == "another secret":
        request = post(secret_new())
    else:
        request = post(settings.LOYALTY_WEBHOOK_SECRET, body=BODY.replace(b"{}", b'{"x":1}'))

    assert view(request).status_code == 400
    assert received == []
