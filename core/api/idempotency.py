"""Retries with an Idempotency-Key header get the first answer, never a second movement.

The key is claimed in the same transaction as the work it guards: a request
that fails leaves no claim behind and may be retried; two concurrent requests
with one key queue on the unique index, and the second replays the first.
"""

import hashlib
import json
import re
from collections.abc import Callable

from django.db import transaction
from django.utils.translation import gettext_lazy as _
from rest_framework.response import Response

from core.errors import AppError
from loyalty.models import IdempotentRequest

HEADER = "Idempotency-Key"
KEY_PATTERN = re.compile(r"[\x21-\x7e]{1,255}")


def respond_once(request, scope: str, operation: Callable[[], Response]) -> Response:
    """Run `operation` unless this key already has an answer in `scope`; replay that."""
    key = request.headers.get(HEADER)
    if key is None:
        return operation()
    if not KEY_PATTERN.fullmatch(key):
        raise AppError(
            "validation_error",
            _("The Idempotency-Key header must be 1 to 255 visible ASCII characters."),
            details={HEADER: ["invalid"]},
        )
    fingerprint = _fingerprint(request)
    with transaction.atomic():
        claim, created = IdempotentRequest.objects.get_or_create(
            scope=scope, key=key, defaults={"fingerprint": fingerprint}
        )
        if not created:
            return _replay(claim, fingerprint)
        response = operation()
        claim.response_status = response.status_code
        claim.response_body = response.data
        claim.save(update_fields=["response_status", "response_body"])
        return response


def replay_status(first_status: int) -> int:
    """A replay answers 200 where the first request created something."""
    return 200 if first_status == 201 else first_status


def _replay(claim: IdempotentRequest, fingerprint: str) -> Response:
    if claim.fingerprint != fingerprint:
        raise AppError(
            "idempotency_conflict",
            _("This Idempotency-Key was already used for a different request."),
        )
    return Response(claim.response_body, status=replay_status(claim.response_status))


def _fingerprint(request) -> str:
    payload = json.dumps([request.method, request.path, request.data], sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()
