"""The application's one error type and its mapping to the contract's JSON shape.

Every refusal, whether raised by a service or by DRF while parsing a request,
leaves the API as {"error": {"code", "message", "details"}} with the status
that the code implies.
"""

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.http import Http404, JsonResponse
from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions as drf
from rest_framework import serializers
from rest_framework.response import Response

STATUS_BY_CODE = {
    "validation_error": 400,
    "invalid_phone": 400,
    "not_authenticated": 401,
    "permission_denied": 403,
    "not_found": 404,
    "method_not_allowed": 405,
    "not_acceptable": 406,
    "idempotency_conflict": 409,
    "invalid_state": 409,
    "birthday_locked": 409,
    "unsupported_media_type": 415,
    "insufficient_points": 422,
    "redeem_cap_exceeded": 422,
    "below_minimum": 422,
    "refund_exceeds_purchase": 422,
    "refund_exceeds_line": 422,
    "refund_mode_mismatch": 422,
    "unknown_line": 422,
    "unknown_event_type": 422,
    "out_of_stock": 422,
    "limit_exceeded": 422,
    "item_unavailable": 422,
    "invalid_code": 422,
    "throttled": 429,
    "server_error": 500,
}
ERROR_CODES = sorted(STATUS_BY_CODE)


class AppError(Exception):
    """A refusal with a stable machine-readable code and a human message."""

    def __init__(self, code: str, message, *, details: dict | None = None):
        super().__init__(str(message))
        self.code = code
        self.status = STATUS_BY_CODE[code]
        self.message = message
        self.details = details or {}


def error_body(code: str, message, details: dict | None = None) -> dict:
    return {"error": {"code": code, "message": str(message), "details": details or {}}}


_DRF_CODES = [
    (drf.NotAuthenticated, "not_authenticated"),
    (drf.AuthenticationFailed, "not_authenticated"),
    (drf.PermissionDenied, "permission_denied"),
    (drf.NotFound, "not_found"),
    (drf.MethodNotAllowed, "method_not_allowed"),
    (drf.NotAcceptable, "not_acceptable"),
    (drf.UnsupportedMediaType, "unsupported_media_type"),
    (drf.Throttled, "throttled"),
    (drf.ParseError, "validation_error"),
]


def api_exception_handler(exc, context):
    if isinstance(exc, AppError):
        headers = {}
        if exc.code == "throttled" and "retry_after" in exc.details:
            headers["Retry-After"] = str(exc.details["retry_after"])
        return Response(
            error_body(exc.code, exc.message, exc.details), status=exc.status, headers=headers
        )
    if isinstance(exc, drf.ValidationError):
        return _validation_error_response(exc)
    if isinstance(exc, Http404):
        exc = drf.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = drf.PermissionDenied()
    elif isinstance(exc, RequestDataTooBig):
        # Past DATA_UPLOAD_MAX_MEMORY_SIZE; left to Django it would be an HTML 400 page.
        exc = drf.ParseError(_("The request body is too large."))
    for exc_type, code in _DRF_CODES:
        if isinstance(exc, exc_type):
            headers = {}
            if getattr(exc, "auth_header", None):
                headers["WWW-Authenticate"] = exc.auth_header
            if getattr(exc, "wait", None):
                headers["Retry-After"] = str(int(exc.wait))
            return Response(error_body(code, exc.detail), status=exc.status_code, headers=headers)
    return None


def _validation_error_response(exc: drf.ValidationError) -> Response:
    details = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
    # A request whose only fault is the phone gets the more specific code.
    code = "invalid_phone" if set(details) == {"phone"} else "validation_error"
    message = (
        _("Enter a valid mobile phone number.")
        if code == "invalid_phone"
        else _("The request is not valid; see details.")
    )
    return Response(error_body(code, message, details), status=400)


def json_bad_request(request, exception=None):
    return JsonResponse(error_body("validation_error", _("Bad request.")), status=400)


def json_not_found(request, exception=None):
    return JsonResponse(error_body("not_found", _("Not found.")), status=404)


class ApiPathNotFoundMiddleware:
    """An unknown path under /api/ answers in the error shape with DEBUG on too.

    With DEBUG, Django answers a path that matches no URL with its HTML debug page and
    never calls handler404; a client developing against a local server needs the JSON
    it will get in production. A 404 of a view that did resolve is the view's own.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if (
            response.status_code == 404
            and request.resolver_match is None
            and request.path.startswith("/api/")
        ):
            return json_not_found(request)
        return response


def json_server_error(request):
    return JsonResponse(
        error_body("server_error", _("Something went wrong on our side.")), status=500
    )


class ErrorDetail(serializers.Serializer):
    code = serializers.ChoiceField(choices=ERROR_CODES)
    message = serializers.CharField()
    details = serializers.DictField()


class ErrorOutput(serializers.Serializer):
    error = ErrorDetail()


def error_responses(*statuses: int) -> dict:
    """OpenAPI responses for the error statuses an endpoint may answer with."""
    return {status: ErrorOutput for status in statuses}
