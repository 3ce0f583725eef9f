"""Who calls the API: a store with its API key, or a customer with an access token."""

import re
from datetime import timedelta

from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.permissions import BasePermission
from rest_framework_simplejwt.authentication import JWTAuthentication

from accounts.models import User
from loyalty.models import StoreAPIKey
from loyalty.services.stores import store_api_key_verify

KEYWORD = "Api-Key"
# Keys are "<8-char prefix>.<32-char secret>" of letters and digits. Anything much longer,
# or with anything but visible ASCII (NUL, which PostgreSQL refuses in a query, for one),
# is not a key.
KEY_SHAPE = re.compile(r"[\x21-\x7e]{1,100}")
# Staff see when a key was last used to the minute; finer would write on every request.
LAST_USE_RESOLUTION = timedelta(seconds=60)


class StoreClient:
    """The caller behind a store's API key, standing in for request.user."""

    is_authenticated = True

    def __init__(self, store):
        self.store = store


class StoreAPIKeyAuthentication(BaseAuthentication):
    """`Authorization: Api-Key <key>`, checked against the hashed, unrevoked keys."""

    # What a caller without a store's key is told (core.api.views.ApiView).
    credential_needed = _("This endpoint takes a store's API key: Authorization: Api-Key <key>.")

    def authenticate(self, request):
        keyword, _sep, key = get_authorization_header(request).decode("latin-1").partition(" ")
        # Authentication schemes are case-insensitive (RFC 9110, section 11.1).
        if keyword.lower() != KEYWORD.lower():
            return None
        key = key.strip()
        if not KEY_SHAPE.fullmatch(key):
            raise AuthenticationFailed(_("Invalid or revoked API key."))
        api_key = store_api_key_verify(key=key)
        if api_key is None or api_key.has_expired:
            raise AuthenticationFailed(_("Invalid or revoked API key."))
        record_key_use(api_key)
        return StoreClient(api_key.store), api_key

    def authenticate_header(self, request):
        return KEYWORD


def record_key_use(api_key: StoreAPIKey) -> None:
    """Note the key's use at most once a minute: the row just read usually says it is
    fresh, and otherwise the UPDATE's condition lets one of many parallel requests write."""
    now = timezone.now()
    stale_before = now - LAST_USE_RESOLUTION
    if api_key.last_used_at is not None and api_key.last_used_at >= stale_before:
        return
    StoreAPIKey.objects.filter(
        Q(last_used_at__isnull=True) | Q(last_used_at__lt=stale_before), pk=api_key.pk
    ).update(last_used_at=now)
    api_key.last_used_at = now


class IsStore(BasePermission):
    message = _("This endpoint needs a store's API key.")

    def has_permission(self, request, view):
        return isinstance(request.auth, StoreAPIKey)


class StoreAPIKeyScheme(OpenApiAuthenticationExtension):
    """Describes the store key in the OpenAPI schema, so the docs can send it."""

    target_class = StoreAPIKeyAuthentication
    name = "StoreApiKey"

    def get_security_definition(self, auto_schema):
        # OpenAPI has no field for the word before an apiKey's value: the description says it
        # (drf-spectacular's own wording for such schemes), and a client sets it (in a client
        # openapi-python-client generates: AuthenticatedClient(prefix="Api-Key")).
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": (
                f'Key-based authentication with required prefix "{KEYWORD}": send '
                f"`Authorization: {KEYWORD} <key>`, with the key `createstore` printed. "
                "The key goes in this header only, never in a URL."
            ),
        }


class CustomerTokenAuthentication(JWTAuthentication):
    """`Authorization: Bearer <access token>`; a token older than the password is dead."""

    # What a caller without a customer's token is told (core.api.views.ApiView).
    credential_needed = _(
        "This endpoint takes a customer's access token: Authorization: Bearer <token>."
    )

    def authenticate(self, request):
        try:
            return super().authenticate(request)
        except AuthenticationFailed:
            # One plain message: which check failed is no business of the caller.
            raise AuthenticationFailed(_("The access token is not valid or has expired.")) from None


class IsCustomer(BasePermission):
    message = _("This endpoint needs a customer's access token.")

    def has_permission(self, request, view):
        # Staff accounts log in to admin only; a token one of them got elsewhere opens nothing.
        user = request.user
        return isinstance(user, User) and user.is_active and user.is_customer


class CustomerTokenScheme(OpenApiAuthenticationExtension):
    target_class = CustomerTokenAuthentication
    name = "CustomerToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "The `access` token from /api/v1/auth/token or /signup.",
        }
