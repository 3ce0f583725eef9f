"""The SMS outbox: texts leave from a Celery task once the transaction commits, are
retried while the provider fails, are never lost silently, keep no text once done,
and no code ever reaches a log. Then the file and Twilio backends, byte by byte."""

import base64
import json
import logging
import re
import socket
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs
from zoneinfo import ZoneInfo

import pytest
import time_machine
from celery.signals import task_retry
from rest_framework.test import APIClient

from accounts import tasks
from accounts.models import SmsCodeRequest, SmsMessage
from accounts.sms import SmsDeliveryError, sms_backend
from config.celery import app as celery_app

pytestmark = pytest.mark.django_db

PHONE = "+8613800138000"
SMS_CODES_URL = "/api/v1/auth/sms-codes"
SIGNUP_URL = "/api/v1/auth/signup"
CODE = re.compile(r"\b[0-9]{6}\b")
START = datetime(2026, 7, 6, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))


class FlakyBackend:
    """A provider that refuses the first `failures` texts, then takes them."""

    failures = 0
    attempts: list[dict] = []

    def send(self, phone, body):
        type(self).attempts.append({"to": phone, "body": body})
        if type(self).failures:
            type(self).failures -= 1
            raise SmsDeliveryError("provider answered 503: try again later")


@pytest.fixture
def eager_retries():
    """Let an eager task's retries run in turn, as a worker would run them.

    With task_eager_propagates (set in conftest) the first Retry would escape
    from `delay()` instead; the test reads the outcome from the database."""
    celery_app.conf.task_eager_propagates = False
    yield
    celery_app.conf.task_eager_propagates = True


@pytest.fixture
def flaky_provider(settings, eager_retries):
    settings.SMS_BACKEND = f"{__name__}.FlakyBackend"
    FlakyBackend.failures = 0
    FlakyBackend.attempts = []
    return FlakyBackend


@pytest.fixture
def retry_countdowns():
    """The countdown of every retry the delivery task schedules, in order."""
    countdowns = []

    def record(sender=None, reason=None, **kwargs):
        if sender.name == tasks.sms_deliver.name:
            countdowns.append(reason.when)

    task_retry.connect(record, weak=False)
    yield countdowns
    task_retry.disconnect(record)


@pytest.fixture
def ask_code(django_capture_on_commit_callbacks):
    """POST a sign-up code request and let its on-commit task run."""

    def ask(phone=PHONE):
        with django_capture_on_commit_callbacks(execute=True):
            response = APIClient().post(
                SMS_CODES_URL, {"phone": phone, "purpose": "signup"}, format="json"
            )
        assert response.status_code == 202, response.json()

    return ask


def code_in(body):
    return CODE.search(body).group()


def formatted_logs(caplog):
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    return [formatter.format(record) for record in caplog.records]


# --- Outbox and task -----------------------------------------------------------


def test_a_text_goes_out_only_once_the_transaction_commits(
    django_capture_on_commit_callbacks, sms_outbox
):
    # Given a code request whose transaction has not committed yet
    with django_capture_on_commit_callbacks(execute=False) as decide:
        response = APIClient().post(
            SMS_CODES_URL, {"phone": PHONE, "purpose": "signup"}, format="json"
        )
    assert response.status_code == 202
    # Then nothing is decided or sent: the request waits for its task
    assert sms_outbox == []
    assert not SmsMessage.objects.exists()

    # When its task has decided, in a transaction that has not committed yet
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        for callback in decide:
            callback()

    # Then nothing has been sent, the text waits in the outbox
    assert sms_outbox == []
    message = SmsMessage.objects.get()
    assert message.status == SmsMessage.Status.PENDING
    assert CODE.search(message.body)

    # When the transaction commits
    for callback in callbacks:
        callback()

    # Then the task sends it, and the outbox row keeps no text
    assert [text["to"] for text in sms_outbox] == [PHONE]
    message.refresh_from_db()
    assert message.status == SmsMessage.Status.SENT
    assert message.body == ""
    assert message.sent_at is not None
    assert message.attempts == 1


def test_a_message_is_sent_once_even_when_its_task_runs_twice(ask_code, sms_outbox):
    ask_code()
    message = SmsMessage.objects.get()

    tasks.sms_deliver.delay(message.pk)

    assert len(sms_outbox) == 1
    message.refresh_from_db()
    assert message.attempts == 1


def test_delivery_is_retried_with_growing_backoff_until_the_provider_takes_it(
    settings, ask_code, flaky_provider, retry_countdowns
):
    settings.SMS_DELIVERY_RETRIES = 5
    flaky_provider.failures = 3

    ask_code()

    message = SmsMessage.objects.get()
    assert message.status == SmsMessage.Status.SENT
    assert message.attempts == 4
    assert message.body == ""
    assert len(flaky_provider.attempts) == 4
    assert retry_countdowns == [10, 20, 40]


def test_delivery_gives_up_after_the_configured_retries_and_says_so(
    settings, ask_code, flaky_provider, caplog
):
    settings.SMS_DELIVERY_RETRIES = 2
    flaky_provider.failures = 100

    with caplog.at_level(logging.INFO):
        ask_code()

    # One try and two retries, then the message is marked failed, not dropped
    assert len(flaky_provider.attempts) == 3
    message = SmsMessage.objects.get()
    assert message.status == SmsMessage.Status.FAILED
    assert message.attempts == 3
    assert "503" in message.last_error
    assert message.body == ""
    assert message.sent_at is None
    assert any(
        record.levelno == logging.ERROR and "given up" in record.getMessage()
        for record in caplog.records
    )


def post_code_request():
    return APIClient().post(SMS_CODES_URL, {"phone": PHONE, "purpose": "signup"}, format="json")


def test_a_code_that_expired_before_it_could_be_sent_is_failed_not_sent(
    django_capture_on_commit_callbacks, sms_outbox
):
    with time_machine.travel(START, tick=False) as clock:
        with django_capture_on_commit_callbacks(execute=False) as decide:
            post_code_request()
        with django_capture_on_commit_callbacks(execute=False) as deliver:
            for callback in decide:
                callback()
        clock.shift(timedelta(minutes=11))

        for callback in deliver:
            callback()

    assert sms_outbox == []
    message = SmsMessage.objects.get()
    assert message.status == SmsMessage.Status.FAILED
    assert message.body == ""


def test_a_request_decided_only_after_a_code_would_have_expired_sends_nothing(
    django_capture_on_commit_callbacks, sms_outbox
):
    with time_machine.travel(START, tick=False) as clock:
        with django_capture_on_commit_callbacks(execute=False) as decide:
            post_code_request()
        clock.shift(timedelta(minutes=11))

        with django_capture_on_commit_callbacks(execute=True):
            for callback in decide:
                callback()

    assert sms_outbox == []
    assert not SmsMessage.objects.exists()
    assert not SmsCodeRequest.objects.exists()


def test_a_request_whose_task_never_reached_the_broker_is_decided_by_the_sweeper(
    django_capture_on_commit_callbacks, sms_outbox
):
    with time_machine.travel(START, tick=False) as clock:
        # The request commits but its task is lost (the on-commit hook never runs here)
        post_code_request()
        clock.shift(timedelta(seconds=30))
        assert tasks.sms_requeue_stranded() == 0

        clock.shift(timedelta(seconds=45))
        with django_capture_on_commit_callbacks(execute=True):
            requeued = tasks.sms_requeue_stranded()

    assert requeued == 1
    assert [text["to"] for text in sms_outbox] == [PHONE]
    assert SmsMessage.objects.get().status == SmsMessage.Status.SENT
    assert not SmsCodeRequest.objects.exists()


def test_a_message_whose_task_never_reached_the_broker_is_sent_by_the_sweeper(
    django_capture_on_commit_callbacks, sms_outbox
):
    with time_machine.travel(START, tick=False) as clock:
        # The request is decided, but the text's own task is lost
        with django_capture_on_commit_callbacks(execute=False) as decide:
            post_code_request()
        with django_capture_on_commit_callbacks(execute=False):
            for callback in decide:
                callback()
        clock.shift(timedelta(seconds=30))
        assert tasks.sms_requeue_stranded() == 0

        clock.shift(timedelta(seconds=45))
        requeued = tasks.sms_requeue_stranded()

    assert requeued == 1
    assert [text["to"] for text in sms_outbox] == [PHONE]
    assert SmsMessage.objects.get().status == SmsMessage.Status.SENT


def test_no_code_and_no_full_phone_in_the_logs_when_the_text_goes_out(
    settings, ask_code, flaky_provider, caplog
):
    settings.SMS_DELIVERY_RETRIES = 3
    flaky_provider.failures = 1

    with caplog.at_level(logging.DEBUG):
        ask_code()

    code = code_in(flaky_provider.attempts[-1]["body"])
    assert SmsMessage.objects.get().status == SmsMessage.Status.SENT
    logs = formatted_logs(caplog)
    assert any("failed" in line for line in logs), "the failed first try should be logged"
    assert [line for line in logs if code in line or PHONE in line] == []


def test_no_code_and_no_full_phone_in_the_logs_when_the_provider_keeps_failing(
    settings, ask_code, flaky_provider, caplog
):
    settings.SMS_DELIVERY_RETRIES = 1
    flaky_provider.failures = 100

    with caplog.at_level(logging.DEBUG):
        ask_code()

    code = code_in(flaky_provider.attempts[0]["body"])
    message = SmsMessage.objects.get()
    assert message.status == SmsMessage.Status.FAILED
    assert code not in message.last_error
    logs = formatted_logs(caplog)
    assert any("given up" in line for line in logs)
    assert [line for line in logs if code in line or PHONE in line] == []


# --- File backend ----------------------------------------------------------------


def test_the_file_backend_appends_one_json_object_per_text(settings, tmp_path, ask_code):
    sms_file = tmp_path / "sms.jsonl"
    sms_file.write_text('{"to": "+8613700000000", "body": "an earlier text"}\n')
    settings.SMS_BACKEND = "file"
    settings.SMS_FILE_PATH = str(sms_file)

    ask_code(PHONE)
    ask_code("+8613900139000")

    lines = [json.loads(line) for line in sms_file.read_text(encoding="utf-8").splitlines()]
    assert [line["to"] for line in lines] == ["+8613700000000", PHONE, "+8613900139000"]
    assert all(set(line) == {"to", "body"} for line in lines)
    # The code written to the file is the one that signs the customer up
    response = APIClient().post(
        SIGNUP_URL,
        {"phone": PHONE, "code": code_in(lines[1]["body"]), "password": "a long passphrase 2026"},
        format="json",
    )
    assert response.status_code == 201


# --- Twilio backend --------------------------------------------------------------

TWILIO_SID = "AC0123456789abcdef0123456789abcdef"
TWILIO_TOKEN = "twilio-auth-token-1234"
TWILIO_FROM = "+15005550006"


class FakeTwilio(ThreadingHTTPServer):
    """Records every request; answers with `answer` (status, JSON payload)."""

    def __init__(self):
        super().__init__(("127.0.0.1", 0), TwilioHandler)
        self.requests = []
        self.answer = (201, {"sid": "SM0123", "status": "queued"})


class TwilioHandler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
        self.server.requests.append(
            {
                "path": self.path,
                "authorization": self.headers.get("Authorization"),
                "content_type": self.headers.get("Content-Type"),
                "form": parse_qs(body, strict_parsing=True),
            }
        )
        status, payload = self.server.answer
        answer = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format, *args):
        pass


@pytest.fixture
def twilio(settings, eager_retries):
    server = FakeTwilio()
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    settings.SMS_BACKEND = "twilio"
    settings.TWILIO_API_BASE = f"http://127.0.0.1:{server.server_address[1]}"
    settings.TWILIO_ACCOUNT_SID = TWILIO_SID
    settings.TWILIO_AUTH_TOKEN = TWILIO_TOKEN
    settings.TWILIO_FROM = TWILIO_FROM
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


def test_twilio_gets_a_form_post_with_basic_auth_to_the_messages_resource(twilio, ask_code):
    ask_code()

    [request] = twilio.requests
    assert request["path"] == f"/2010-04-01/Accounts/{TWILIO_SID}/Messages.json"
    expected_auth = base64.b64encode(f"{TWILIO_SID}:{TWILIO_TOKEN}".encode()).decode()
    assert request["authorization"] == f"Basic {expected_auth}"
    assert request["content_type"] == "application/x-www-form-urlencoded"
    form = request["form"]
    assert form["To"] == [PHONE]
    assert form["From"] == [TWILIO_FROM]
    assert CODE.search(form["Body"][0])
    assert set(form) == {"To", "From", "Body"}
    message = SmsMessage.objects.get()
    assert message.status == SmsMessage.Status.SENT
    assert message.body == ""


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param((500, {"code": 20500, "message": "Internal Server Error"}), id="500"),
        pytest.param((400, {"code": 21606, "message": "The From number is not valid"}), id="400"),
    ],
)
def test_a_twilio_error_raises_a_delivery_error_without_the_text(twilio, answer):
    twilio.answer = answer
    body = "Your sign-up code is 482915. It is valid for 10 minutes."

    with pytest.raises(SmsDeliveryError) as raised:
        sms_backend().send(PHONE, body)

    assert str(answer[0]) in str(raised.value)
    assert "482915" not in str(raised.value)
    assert len(twilio.requests) == 1


def test_an_unreachable_twilio_raises_a_delivery_error(settings):
    with socket.socket() as placeholder:
        placeholder.bind(("127.0.0.1", 0))
        closed_port = placeholder.getsockname()[1]
    settings.SMS_BACKEND = "twilio"
    settings.TWILIO_API_BASE = f"http://127.0.0.1:{closed_port}"

    with pytest.raises(SmsDeliveryError, match="unreachable"):
        sms_backend().send(PHONE, "Your sign-up code is 482915.")


def test_the_task_retries_while_twilio_fails_then_marks_the_message_failed(
    settings, twilio, ask_code, caplog
):
    settings.SMS_DELIVERY_RETRIES = 2
    twilio.answer = (500, {"code": 20500, "message": "Internal Server Error"})

    with caplog.at_level(logging.DEBUG):
        ask_code()

    assert len(twilio.requests) == 3
    code = code_in(twilio.requests[0]["form"]["Body"][0])
    message = SmsMessage.objects.get()
    assert message.status == SmsMessage.Status.FAILED
    assert message.body == ""
    assert "500" in message.last_error
    assert code not in message.last_error
    assert [line for line in formatted_logs(caplog) if code in line] == []


def test_twilio_error_messages_do_not_leak_the_full_phone_into_logs(
    settings, twilio, ask_code, caplog
):
    twilio.answer = (
        400,
        {"code": 21211, "message": f"The 'To' number {PHONE} is not a valid phone number."},
    )

    with caplog.at_level(logging.DEBUG):
        ask_code()

    message = SmsMessage.objects.get()
    assert message.status == SmsMessage.Status.FAILED
    assert PHONE not in message.last_error
    assert [line for line in formatted_logs(caplog) if PHONE in line] == []


def test_a_message_twilio_refuses_outright_is_given_up_at_once(settings, twilio, ask_code):
    settings.SMS_DELIVERY_RETRIES = 5
    twilio.answer = (400, {"code": 21614, "message": "'To' number is not a valid mobile number"})

    ask_code()

    assert len(twilio.requests) == 1
    message = SmsMessage.objects.get()
    assert message.status == SmsMessage.Status.FAILED
    assert "21614" in message.last_error


def test_a_text_is_named_in_admin_by_the_shops_local_time(settings):
    settings.TIME_ZONE = "Asia/Shanghai"
    sent = SmsMessage(
        phone="+8613800138000",
        body="hello",
        status=SmsMessage.Status.SENT,
        created_at=datetime(2026, 7, 6, 2, 30, tzinfo=UTC),
    )

    assert str(sent).endswith("2026-07-06 10:30")
