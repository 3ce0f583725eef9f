from functools import cache

import phonenumbers
from django.conf import settings
from django.utils.translation import gettext_lazy as _
from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from phonenumbers import PhoneMetadata
from rest_framework import serializers

from accounts.phones import PHONE_INPUT, InvalidPhone, normalize_phone


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


class PhoneFieldSchema(OpenApiSerializerFieldExtension):
    """What PHONE_INPUT lets through, and no fewer characters than the shortest mobile number
    of the default region (national format) or of any region (E.164). Whether a number of that
    shape is a mobile number the schema cannot say."""

    target_class = PhoneField

    def map_serializer_field(self, auto_schema, direction):
        return {
            "type": "string",
            "minLength": shortest_mobile_number(settings.PHONE_DEFAULT_REGION),
            "maxLength": PHONE_INPUT_MAX_LENGTH,
            "pattern": f"^{PHONE_INPUT.pattern}$",
            "description": "A mobile number, in E.164 or in the national format of the "
            "default region; answers give it in E.164.",
            "example": "+8613800138000",
        }


# PHONE_INPUT's own bound: an optional "+", a digit, then at most 30 characters.
PHONE_INPUT_MAX_LENGTH = 1 + 1 + 30


@cache
def shortest_mobile_number(default_region: str) -> int:
    lengths = [_shortest_national_mobile_number(default_region)]
    for region in phonenumbers.SUPPORTED_REGIONS:
        national = _shortest_national_mobile_number(region)
        if national is not None:
            lengths.append(len(f"+{phonenumbers.country_code_for_region(region)}") + national)
    return min(length for length in lengths if length is not None)


def _shortest_national_mobile_number(region: str) -> int | None:
    """None for a region without mobile numbers (Tristan da Cunha's share Saint Helena's)."""
    metadata = PhoneMetadata.metadata_for_region(region)
    if metadata is None or metadata.mobile is None:
        return None
    # A region whose mobile numbers have no lengths of their own uses the general ones.
    lengths = metadata.mobile.possible_length or metadata.general_desc.possible_length
    return min(length for length in lengths if length > 0)
