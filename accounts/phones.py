"""Phone numbers are the customer's identity: parsed once, stored and shown in E.164."""

import phonenumbers
from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

# E.164 allows at most 15 digits; a longer input is refused before parsing.
MAX_PHONE_INPUT_LENGTH = 32


class InvalidPhone(ValueError):
    pass


def normalize_phone(raw: str) -> str:
    """Return `raw` in E.164, accepting national format of PHONE_DEFAULT_REGION."""
    if not isinstance(raw, str) or not raw.strip() or len(raw) > MAX_PHONE_INPUT_LENGTH:
        raise InvalidPhone(raw)
    try:
        parsed = phonenumbers.parse(raw, settings.PHONE_DEFAULT_REGION)
    except phonenumbers.NumberParseException as exc:
        raise InvalidPhone(raw) from exc
    if not phonenumbers.is_valid_number(parsed):
        raise InvalidPhone(raw)
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def validate_phone(value: str) -> None:
    try:
        normalize_phone(value)
    except InvalidPhone:
        raise ValidationError(
            _("Enter a valid mobile phone number."), code="invalid_phone"
        ) from None
