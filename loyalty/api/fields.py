"""Request fields shared by the API: strict about types, bounded in size."""

import re
from decimal import Decimal

from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accounts.api.fields import PhoneField

__all__ = ["AmountField", "MoneyField", "PhoneField", "PointsField", "ReferenceField"]

# ASCII digits only, matched whole: \d and $ would let "１２.００" and "300.00\n" through.
AMOUNT_PATTERN = re.compile(r"[0-9]{1,20}(\.[0-9]{1,2})?")
MAX_AMOUNT = Decimal("9999999999.99")
REFERENCE_PATTERN = re.compile(r"[A-Za-z0-9._:-]{1,64}")
MAX_POINTS = 10**12

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

    def to_internal_value(self, data):
        if not isinstance(data, str) or not AMOUNT_PATTERN.fullmatch(data):
            self.fail("invalid")
        amount = Decimal(data).quantize(Decimal("0.01"))
        if amount <= 0:
            self.fail("not_positive")
        if amount > MAX_AMOUNT:
            self.fail("too_large")
        return amount

    def to_representation(self, value):
        return f"{value:.2f}"


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


@extend_schema_field(
    {"type": "string", "format": "decimal", "pattern": r"^[0-9]+\.[0-9]{2}$", "example": "10.00"}
)
class MoneyField(serializers.DecimalField):
    """Money in an answer: a string with exactly 2 decimals, never negative."""

    def __init__(self, **kwargs):
        super().__init__(max_digits=15, decimal_places=2, **kwargs)
