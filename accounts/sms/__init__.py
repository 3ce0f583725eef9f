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
    """The provider did not take the message; delivery may be retried."""


def sms_backend():
    path = settings.SMS_BACKEND
    return import_string(BACKEND_ALIASES.get(path, path))()
