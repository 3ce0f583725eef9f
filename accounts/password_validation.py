"""Password rules beyond Django's own (settings.AUTH_PASSWORD_VALIDATORS)."""

import re

import phonenumbers
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

# What people put between the digits of a phone number.
SEPARATORS = re.compile(r"[\s().+-]")


class PhoneNotInPasswordValidator:
    """Refuses a password that holds the account's own phone number, in any format:
    the phone is the login, so it is the first thing anyone tries as the password."""

    def validate(self, password: str, user=None) -> None:
        national = _national_number(getattr(user, "phone", ""))
        if national and national in SEPARATORS.sub("", password):
            raise ValidationError(
                _("The password cannot contain your phone number."), code="password_has_phone"
            )

    def get_help_text(self) -> str:
        return _("Your password cannot contain your phone number.")


def _national_number(phone: str) -> str:
    try:
        return str(phonenumbers.parse(phone).national_number)
    except phonenumbers.NumberParseException:
        return ""
