from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accounts.phones import InvalidPhone, normalize_phone


@extend_schema_field({"type": "string", "example": "+8613800138000"})
class PhoneField(serializers.Field):
    """A mobile number in E.164 or national format; stored and returned in E.164."""

    default_error_messages = {"invalid_phone": _("Enter a valid mobile phone number.")}

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid_phone")
        try:
            return normalize_phone(data)
        except InvalidPhone:
            self.fail("invalid_phone")

    def to_representation(self, value):
        return value
