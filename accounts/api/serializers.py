import re

from django.utils.translation import gettext_lazy as _
from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accounts.models import SmsCode
from core.api.fields import NO_NUL_PATTERN, NON_BLANK_TEXT_PATTERN, PhoneField

CODE_PATTERN = re.compile(r"[0-9]{6}")
PASSWORD_MAX_LENGTH = 128
REFRESH_TOKEN_MAX_LENGTH = 2000


@extend_schema_field({"type": "string", "pattern": "^[0-9]{6}$", "example": "483920"})
class CodeField(serializers.CharField):
    default_error_messages = {"invalid": _("The code is 6 digits.")}

    def to_internal_value(self, data):
        if not isinstance(data, str) or not CODE_PATTERN.fullmatch(data):
            self.fail("invalid")
        return data


class PasswordField(serializers.CharField):
    def __init__(self, **kwargs):
        super().__init__(max_length=PASSWORD_MAX_LENGTH, trim_whitespace=False, **kwargs)

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class PasswordFieldSchema(OpenApiSerializerFieldExtension):
    """A password, which core.openapi gives the length AUTH_PASSWORD_VALIDATORS ask for.
    Their other rules (not common, not all digits, not like the phone) a schema cannot say."""

    target_class = PasswordField

    def map_serializer_field(self, auto_schema, direction):
        return {
            "type": "string",
            "format": "password",
            "maxLength": PASSWORD_MAX_LENGTH,
            "pattern": NO_NUL_PATTERN,
        }


@extend_schema_field(
    {
        "type": "string",
        "minLength": 1,
        "maxLength": REFRESH_TOKEN_MAX_LENGTH,
        "pattern": NON_BLANK_TEXT_PATTERN,
    }
)
class RefreshTokenField(serializers.CharField):
    def __init__(self, **kwargs):
        super().__init__(max_length=REFRESH_TOKEN_MAX_LENGTH, **kwargs)


class SmsCodeInput(serializers.Serializer):
    phone = PhoneField()
    purpose = serializers.ChoiceField(choices=SmsCode.Purpose.choices)


class SignupInput(serializers.Serializer):
    phone = PhoneField()
    code = CodeField()
    password = PasswordField()


class TokenInput(serializers.Serializer):
    phone = PhoneField()
    password = PasswordField()


class RefreshInput(serializers.Serializer):
    refresh = RefreshTokenField()


class PasswordResetInput(serializers.Serializer):
    phone = PhoneField()
    code = CodeField()
    new_password = PasswordField()


class AcceptedOutput(serializers.Serializer):
    detail = serializers.CharField()


class TokensOutput(serializers.Serializer):
    access = serializers.CharField()
    refresh = serializers.CharField()


class AccessOutput(serializers.Serializer):
    access = serializers.CharField()
