from django.utils.translation import gettext_lazy as _
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.permissions import BasePermission
from rest_framework_simplejwt.authentication import JWTAuthentication

from accounts.models import User


class CustomerTokenAuthentication(JWTAuthentication):
    """`Authorization: Bearer <access token>`; a token older than the password is dead."""

    # What a caller without a customer's token is told (config.api.ApiView).
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
