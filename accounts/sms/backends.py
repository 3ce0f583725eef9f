import base64
import json
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request

from django.conf import settings

from . import SmsDeliveryError

# Twilio refuses this very message (bad number, bad request): no retry can help.
# Auth errors (401, 403) are retried: an operator may fix the credentials meanwhile.
PERMANENT_HTTP_STATUSES = {400, 404}

# Texts sent by the locmem backend, for tests; like django.core.mail.outbox.
outbox: list[dict] = []
_file_lock = threading.Lock()


class ConsoleBackend:
    """Prints each text: the development default, where the console is the phone."""

    def send(self, phone: str, body: str) -> None:
        sys.stdout.write(f"SMS to {phone}: {body}\n")
        sys.stdout.flush()


class FileBackend:
    """Appends one JSON object per text, {"to": …, "body": …}, to SMS_FILE_PATH."""

    def send(self, phone: str, body: str) -> None:
        line = json.dumps({"to": phone, "body": body}, ensure_ascii=False)
        with _file_lock, open(settings.SMS_FILE_PATH, "a", encoding="utf-8") as sms_file:
            sms_file.write(line + "\n")


class LocmemBackend:
    """Keeps texts in `outbox`, for tests."""

    def send(self, phone: str, body: str) -> None:
        outbox.append({"to": phone, "body": body})


class TwilioBackend:
    """Twilio's Messages API over HTTPS: POST /2010-04-01/Accounts/{sid}/Messages.json."""

    TIMEOUT_SECONDS = 10

    def send(self, phone: str, body: str) -> None:
        sid = settings.TWILIO_ACCOUNT_SID
        url = f"{settings.TWILIO_API_BASE}/2010-04-01/Accounts/{sid}/Messages.json"
        form = urllib.parse.urlencode({"To": phone, "From": settings.TWILIO_FROM, "Body": body})
        credentials = base64.b64encode(f"{sid}:{settings.TWILIO_AUTH_TOKEN}".encode()).decode()
        request = urllib.request.Request(
            url,
            data=form.encode(),
            method="POST",
            headers={
                "Authorization": f"Basic {credentials}",
                "Content-Type": "application/x-www-form-urlencoded",
                "Accept": "application/json",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=self.TIMEOUT_SECONDS) as response:
                response.read()
        except urllib.error.HTTPError as exc:
            raise SmsDeliveryError(
                f"Twilio answered {exc.code}, error {_twilio_error_code(exc)}",
                permanent=exc.code in PERMANENT_HTTP_STATUSES,
            ) from None
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            raise SmsDeliveryError(f"Twilio unreachable: {exc.__class__.__name__}") from None


def _twilio_error_code(exc: urllib.error.HTTPError):
    """Twilio's numeric error code alone: its message may name the recipient's
    number, which must not reach the logs unmasked."""
    try:
        return json.loads(exc.read() or b"{}").get("code", "unknown")
    except (ValueError, AttributeError):
        return "unknown"
