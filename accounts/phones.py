"""Phone numbers are the customer's identity: parsed once, stored and shown in E.164."""

import re

import phonenumbers
from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

# Digits with the usual separators, an optional leading +, at most 32 characters:
# no letters, so no extensions and no vanity numbers.
PHONE_INPUT = re.compile(r"\+?[0-9][0-9 ().-]{0,30}")
# Customers are reached by SMS: landlines cannot receive the codes.
MOBILE_TYPES = {
    phonenumbers.PhoneNumberType.MOBILE,
    phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
}


class InvalidPhone(ValueError):
    pass


def normalize_phone(raw: str) -> str:
    """Return the mobile number `raw` in E.164, accepting national format of
    PHONE_DEFAULT_REGION. Landlines are refused."""
    if not isinstance(raw, str) or not PHONE_INPUT.fullmatch(raw.strip()):
        raise InvalidPhone(raw)
    try:
        parsed = phonenumbers.parse(raw, settings.PHONE_DEFAULT_REGION)
    except phonenumbers.NumberParseException as exc:
        raise InvalidPhone(raw) from exc
    if (
        not phonenumbers.is_valid_number(parsed)
        or phonenumbers.number_type(parsed) not in MOBILE_TYPES
    ):
        raise InvalidPhone(raw)
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def validate_phone(value: str) -> None:
    try:
        normalize_phone(value)
    except InvalidPhone:
        raise ValidationError(
            _("Enter a valid mobile phone number."), code="invalid_phone"
        ) from None


def mask_phone(phone: str | None) -> str:
    """+8613800138000 -> +86138****8000: enough to tell numbers apart in a log."""
    if not phone:
        return "-"
    return f"{phone[:-8]}****{phone[-4:]}" if len(phone) > 8 else "****"


def phone_region(phone: str) -> str | None:
    """The region code (CN, US, …) of an E.164 number."""
    return phonenumbers.region_code_for_number(phonenumbers.parse(phone))
