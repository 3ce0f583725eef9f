from django.utils.translation import gettext_lazy as _
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.permissions import BasePermission
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.settings import api_settings

from accounts.models import User
from config.memory import BriefMemory

# A worker remembers the user behind a checked token this long instead of reading it
# on every request; so a password change, a deactivation or an erasure made by another
# process ends the older tokens within this many seconds, in this process at once.
USER_MEMORY_SECONDS = 5

# (user id, the token's password claim) -> the user
remembered_users = BriefMemory(seconds=USER_MEMORY_SECONDS)


class CustomerTokenAuthentication(JWTAuthentication):
    """`Authorization: Bearer <access token>`; a token older than the password is dead."""

    def get_user(self, validated_token):
        key = (
            validated_token.get(api_settings.USER_ID_CLAIM),
            validated_token.get(api_settings.REVOKE_TOKEN_CLAIM),
        )
        user = remembered_users.recall(key)
        if user is None:
            user = super().get_user(validated_token)
            remembered_users.remember(key, user)
        return user

    def authenticate(self, request):
        try:
            return super().authenticate(request)
        except AuthenticationFailed:
            # One plain message: which check failed is no business of the caller.
            raise AuthenticationFailed(_("The access token is not valid or has expired.")) from None


class IsCustomer(BasePermission):
    message = _("This endpoint needs a customer's access token.")

    def has_permission(self, request, view):
        return isinstance(request.user, User) and request.user.is_active


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
