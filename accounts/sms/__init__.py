"""Sending SMS through a backend chosen by the SMS_BACKEND setting, the way
Django chooses email backends: `console`, `file`, `locmem`, `twilio`, or the
dotted path of any class with a `send(phone, body)` method."""

from django.conf import settings
from django.utils.module_loading import import_string

BACKEND_ALIASES = {
    "console": "accounts.sms.backends.ConsoleBackend",
    "file": "accounts.sms.backends.FileBackend",
    "locmem": "accounts.sms.backends.LocmemBackend",
    "twilio": "accounts.sms.backends.TwilioBackend",
}


class SmsDeliveryError(Exception):
    """The provider did not take the message. Retried later, unless `permanent`:
    the provider refused this very message (a number it cannot reach, say)."""

    def __init__(self, message: str, *, permanent: bool = False):
        super().__init__(message)
        self.permanent = permanent


def sms_backend():
    path = settings.SMS_BACKEND
    return import_string(BACKEND_ALIASES.get(path, path))()
