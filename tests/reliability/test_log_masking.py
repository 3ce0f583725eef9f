"""Logs mask phone numbers throughout: what the services log, what gunicorn, Celery
and Django log about requests and tasks, tracebacks included, in the test process
through the configured handler and in a real gunicorn and a real Celery worker."""

import io
import logging
import urllib.request
from contextlib import contextmanager
from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import SmsMessage
from accounts.services import sms_code_request
from accounts.sms import SmsDeliveryError
from accounts.sms.delivery import sms_message_send
from core.errors import AppError
from core.logging_filters import PhoneMaskFilter, mask_phones
from tests.processes import start_gunicorn, start_worker, stop_children, stop_worker

PHONE = "+8613800138000"
MASKED = "+86138****8000"
# As a browser or a storefront's HTTP client puts what a clerk typed into a URL.
PHONES_IN_QUERIES = {
    "13800138000": "138****8000",
    "+8613800138000": "+86138****8000",
    "%2B86%20138%200013%208000": "%2B86138****8000",
    "138+0013+8000": "138****8000",
    "138.0013.8000": "138****8000",
    "(138)%200013-8000": "(138****8000",
    "%5B138%5D%200013.8000": "%5B138****8000",
}


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        (PHONE, MASKED),
        ("13800138000", "138****8000"),
        ("138 0013 8000", "138****8000"),
        ("138-0013-8000", "138****8000"),
        ("+86 138 0013 8000", MASKED),
        ("008613800138000", "0086138****8000"),
        ("+14155552671", "+141****2671"),
        (
            "GET /admin/loyalty/member/?q=13800138000 HTTP/1.1",
            "GET /admin/loyalty/member/?q=138****8000 HTTP/1.1",
        ),
        ("?next=/admin/%3Fq%3D%2B8613800138000", "?next=/admin/%3Fq%3D%2B86138****8000"),
        (
            "Key (phone)=(+8613800138000) already exists.",
            "Key (phone)=(+86138****8000) already exists.",
        ),
        # Every form the API takes as a phone, as it reaches a query string: a space may
        # be a + or %20, and any separator may be %-encoded, once or twice.
        ("?q=+8613800138000", "?q=+86138****8000"),
        ("?q=%2B8613800138000", "?q=%2B86138****8000"),
        ("?q=%252B8613800138000", "?q=%252B86138****8000"),
        ("?q=+86+138+0013+8000", "?q=+86138****8000"),
        ("?q=138+0013+8000", "?q=138****8000"),
        ("?q=138%200013%208000", "?q=138****8000"),
        ("?q=138.0013.8000", "?q=138****8000"),
        ("?q=(138) 0013-8000", "?q=(138****8000"),
        ("?q=%28138%29%200013-8000", "?q=%28138****8000"),
        ("?q=[138]0013.8000", "?q=[138****8000"),
        ("?q=%5B138%5D+0013%2E8000", "?q=%5B138****8000"),
        ("?q=%2B86%20(138)%200013.8000&page=2", "?q=%2B86138****8000&page=2"),
        ("?q=0086.138.0013.8000", "?q=0086138****8000"),
        ("?q=%2B1%20(415)%20555-2671", "?q=%2B141****2671"),
        # A phone beside other numbers is still found.
        ("adjusted 13800138000 by 100", "adjusted 138****8000 by 100"),
        ("page 2 138 0013 8000", "page 2 138****8000"),
        # Left alone: what is masked already, ids, hashes, timestamps, amounts, addresses.
        (MASKED, MASKED),
        ("task 0e5c2b1a-1380-4013-8000-138001380001", None),
        ("sha 3f2a13800138000b", None),
        ("at 1735689600000 ms", None),
        ("+1500000 points", None),
        ("order 23800138000", None),
        ("expires 2026-07-15 10:00:00 (2026.07.15)", None),
        ("order POS-2026-0715-0001 of 300.00", None),
        ('203.0.113.5 "GET /api/v1/me/transactions?cursor=cD0xMjM%3D HTTP/1.1" 200 5120', None),
    ],
)
def test_what_looks_like_a_phone_is_masked_and_nothing_else(text, masked):
    assert mask_phones(text) == (masked or text)


@contextmanager
def configured_log():
    """What the root's handler, as settings.LOGGING sets it up, writes."""
    [handler] = [
        handler
        for handler in logging.getLogger().handlers
        if any(isinstance(f, PhoneMaskFilter) for f in handler.filters)
    ]
    output = io.StringIO()
    previous = handler.setStream(output)
    try:
        yield output
    finally:
        handler.setStream(previous)


@pytest.mark.django_db
def test_the_sms_cap_warning_shows_the_phone_masked(settings):
    settings.SMS_CAP_PER_PHONE_PER_MINUTE = 1
    with configured_log() as log:
        sms_code_request(phone=PHONE, purpose="signup", client_ip="203.0.113.5")
        with pytest.raises(AppError):
            sms_code_request(phone=PHONE, purpose="signup", client_ip="203.0.113.5")

    assert f"SMS cap sms-phone-minute reached for {MASKED}" in log.getvalue()
    assert PHONE not in log.getvalue()


class ProviderNamingTheNumber:
    """A provider whose error message repeats the number, as providers do."""

    def send(self, phone, body):
        raise SmsDeliveryError(f"Unreachable number {phone}")


@pytest.mark.django_db
def test_a_delivery_failure_shows_the_phone_masked_even_inside_the_providers_error(settings):
    settings.SMS_BACKEND = f"{__name__}.ProviderNamingTheNumber"
    message = SmsMessage.objects.create(
        phone=PHONE, body="hello", expires_at=timezone.now() + timedelta(minutes=10)
    )
    with configured_log() as log, pytest.raises(SmsDeliveryError):
        sms_message_send(message_id=message.pk)

    assert f"SMS {message.pk} to {MASKED} failed: Unreachable number {MASKED}" in log.getvalue()
    assert PHONE not in log.getvalue()


def test_gunicorn_celery_and_django_records_and_tracebacks_are_masked():
    with configured_log() as log:
        logging.getLogger("gunicorn.access").info(
            '%s - - [%s] "%s" %s %s',
            "203.0.113.5",
            "15/Jul/2026:10:00:00 +0800",
            "GET /admin/loyalty/member/?q=13800138000 HTTP/1.1",
            200,
            5120,
        )
        logging.getLogger("gunicorn.error").error("Error handling request /x?phone=%s", PHONE)
        logging.getLogger("celery.app.trace").info(
            "Task %(name)s[%(id)s] succeeded in %(runtime)ss: %(return_value)s",
            {
                "name": "accounts.tasks.sms_deliver",
                "id": "0e5c2b1a-9f3a-4013-8000-5d2c1b0a9e8f",
                "runtime": 0.01,
                "return_value": repr(PHONE),
            },
        )
        try:
            raise ValueError(f"no member has the phone {PHONE}")
        except ValueError:
            logging.getLogger("django.request").exception("Internal Server Error: /api/v1/x")

    output = log.getvalue()
    assert "q=138****8000 HTTP/1.1" in output
    assert "0e5c2b1a-9f3a-4013-8000-5d2c1b0a9e8f] succeeded" in output
    assert f"ValueError: no member has the phone {MASKED}" in output
    assert output.count(MASKED) == 3
    assert "13800138000" not in output


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
@pytest.mark.filterwarnings("ignore::celery.exceptions.AlwaysEagerIgnored")
def test_a_real_gunicorn_and_celery_worker_log_phones_masked(tmp_path):
    # given gunicorn writing its access log, as in the image, and a worker printing texts
    web = start_gunicorn(tmp_path, "--access-logfile", "-", workers=1)
    gunicorn = web.children["gunicorn"]
    try:
        worker = start_worker(tmp_path, SMS_BACKEND="console")
    except BaseException:
        stop_children([gunicorn])
        raise
    try:
        # when requests name a phone in their URLs, however written, and the worker
        # sends a text
        for phone in PHONES_IN_QUERIES:
            with urllib.request.urlopen(f"{web.url}/healthz?phone={phone}", timeout=10):
                pass
        message = SmsMessage.objects.create(
            phone=PHONE,
            body="Your code is 123456.",
            expires_at=timezone.now() + timedelta(minutes=5),
        )
        worker.send("accounts.tasks.sms_deliver", message.pk)
        worker.wait_until(lambda: "succeeded" in worker.output(), "the text was never sent")
    finally:
        stop_worker(worker)
        stop_children([gunicorn])

    # then both logs show the phone masked, and only so
    for masked in PHONES_IN_QUERIES.values():
        assert f'"GET /healthz?phone={masked} HTTP/1.1" 200' in gunicorn.output()
    assert f"SMS to {MASKED}: Your code is 123456." in worker.output()
    for output in (gunicorn.output(), worker.output()):
        assert "0013" not in output
