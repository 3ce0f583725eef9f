"""Fields shared by the API: strict about types, bounded in size; and how a time is
written in a body built without a serializer."""

import re
from datetime import datetime, tzinfo
from decimal import Decimal
from functools import cache

import phonenumbers
from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from drf_spectacular.utils import extend_schema_field
from phonenumbers import PhoneMetadata
from rest_framework import serializers

from accounts.phones import PHONE_INPUT, InvalidPhone, normalize_phone

# ASCII digits only, matched whole: \d and $ would let "１２.００" and "300.00\n" through.
AMOUNT_PATTERN = re.compile(r"[0-9]{1,20}(\.[0-9]{1,2})?")
MAX_AMOUNT = Decimal("9999999999.99")
REFERENCE_PATTERN = re.compile(r"[A-Za-z0-9._:-]{1,64}")
MAX_POINTS = 10**12
MAX_QUANTITY = 1_000_000

# The amounts AmountField takes, for the schema: above zero, at most MAX_AMOUNT, at most two
# decimals. [0-9], not \d: in a Python pattern (schemathesis draws from it) \d is any digit.
# Leading zeros ("007.50"), which the field also takes, are left out to keep it readable.
POSITIVE_AMOUNT_SCHEMA_PATTERN = r"^(?:[1-9][0-9]{0,9}(?:\.[0-9]{1,2})?|0\.(?:[1-9][0-9]?|0[1-9]))$"
REFERENCE_SCHEMA = {
    "type": "string",
    "minLength": 1,
    "maxLength": 64,
    "pattern": f"^{REFERENCE_PATTERN.pattern}$",
    "example": "POS-2026-0001",
}


@extend_schema_field(
    {
        "type": "string",
        "format": "decimal",
        "pattern": POSITIVE_AMOUNT_SCHEMA_PATTERN,
        "description": "Greater than zero, at most 9999999999.99, with at most 2 decimals.",
        "example": "300.00",
    }
)
class AmountField(serializers.Field):
    """Money as a string with at most 2 decimals, e.g. "300.00", greater than zero."""

    default_error_messages = {
        "invalid": _('Send an amount as a string with at most 2 decimals, like "300.00".'),
        "not_positive": _("The amount must be greater than zero."),
        "too_large": _("The amount must be at most 9999999999.99."),
    }
    zero_allowed = False

    def to_internal_value(self, data):
        if not isinstance(data, str) or not AMOUNT_PATTERN.fullmatch(data):
            self.fail("invalid")
        amount = Decimal(data).quantize(Decimal("0.01"))
        if amount <= 0 and not self.zero_allowed:
            self.fail("not_positive")
        if amount > MAX_AMOUNT:
            self.fail("too_large")
        return amount

    def to_representation(self, value):
        return f"{value:.2f}"


@extend_schema_field(
    {
        "type": "string",
        "format": "decimal",
        "pattern": r"^[0-9]{1,10}(?:\.[0-9]{1,2})?$",
        "description": "Zero or more, at most 9999999999.99, with at most 2 decimals.",
        "example": "25.50",
    }
)
class LineAmountField(AmountField):
    """What a basket line cost the customer after discounts: a free line costs "0.00"."""

    zero_allowed = True


@extend_schema_field({"type": "integer", "minimum": 1, "maximum": MAX_QUANTITY, "example": 2})
class QuantityField(serializers.Field):
    """How many of an item a line holds: a whole number, sent as a JSON integer."""

    default_error_messages = {
        "invalid": _("Send the quantity as a whole number from 1 to 1000000."),
    }

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int) or not 1 <= data <= MAX_QUANTITY:
            self.fail("invalid")
        return data

    def to_representation(self, value):
        return value


@extend_schema_field(REFERENCE_SCHEMA)
class ReferenceField(serializers.CharField):
    """An order or refund id: 1 to 64 letters, digits or . _ : -"""

    default_error_messages = {
        "invalid": _("Use 1 to 64 letters, digits or the characters . _ : -"),
    }

    def to_internal_value(self, data):
        if not isinstance(data, str) or not REFERENCE_PATTERN.fullmatch(data):
            self.fail("invalid")
        return data


@extend_schema_field({"type": "integer", "minimum": 1, "maximum": MAX_POINTS, "example": 500})
class PointsField(serializers.Field):
    """A whole, positive number of points, sent as a JSON integer."""

    default_error_messages = {
        "invalid": _("Send points as a whole number from 1 to 1000000000000."),
    }

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        if not 1 <= data <= MAX_POINTS:
            self.fail("invalid")
        return data

    def to_representation(self, value):
        return value


class WholeNumberField(serializers.IntegerField):
    """A whole number sent as a JSON integer: not "12", 12.0 or true, which DRF's
    IntegerField would take (and "١٢", whose digits int() reads)."""

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


# RFC 3339's date-time, which the schema's "date-time" names: ASCII digits, the seconds
# and the offset from UTC. Python's own parser takes more (no seconds, no offset, digits
# of any script).
AWARE_TIME_PATTERN = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?(Z|[+-][0-9]{2}:[0-9]{2})",
    re.IGNORECASE,
)


class AwareDateTimeField(serializers.DateTimeField):
    """A moment sent with its offset from UTC, "2026-11-23T10:00:00+08:00": one without
    would be read in the merchant's zone, which a store's server elsewhere may not mean."""

    default_error_messages = {
        "invalid": _(
            'Send a time in ISO 8601 with its offset from UTC, like "2026-11-23T10:00:00+08:00".'
        ),
    }

    def to_internal_value(self, value):
        if not isinstance(value, str) or not AWARE_TIME_PATTERN.fullmatch(value):
            self.fail("invalid")
        return super().to_internal_value(value.upper())


@extend_schema_field(
    {"type": "string", "format": "decimal", "pattern": r"^[0-9]+\.[0-9]{2}$", "example": "10.00"}
)
class MoneyField(serializers.DecimalField):
    """Money in an answer: a string with exactly 2 decimals, never negative."""

    def __init__(self, **kwargs):
        super().__init__(max_digits=15, decimal_places=2, **kwargs)


# What DRF's CharField takes, for the schema: no NUL anywhere, and something left once
# str.strip() has taken the whitespace off both ends. The whitespace is spelled out because
# \s means other characters in Python (schemathesis draws from the pattern) than in
# ECMAScript (a generated client checks with it).
_STRIPPED = r"\t-\r\x1c- \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
NON_BLANK_TEXT_PATTERN = rf"^[^\x00]*[^\x00{_STRIPPED}][^\x00]*$"
NO_NUL_PATTERN = r"^[^\x00]*$"


def local_iso(value: datetime, zone: tzinfo | None = None) -> str:
    """A time as DRF's DateTimeField writes it, in the merchant's zone, for bodies
    built without a serializer. A caller writing a page of times passes the zone it
    looked up once: the lookup costs more than the conversion."""
    if value.tzinfo is None:
        raise ValueError("local_iso() needs an aware datetime")
    text = value.astimezone(zone or timezone.get_current_timezone()).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


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
