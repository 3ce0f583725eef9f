"""Erasure of a customer: the phone, the name, the SMS codes and texts and the tokens
go; the ledger and the member's events stay under the member's id and the merchant's
totals do not move. Through the service, `manage.py erase_customer` and the members'
admin action."""

import logging
import re
import threading
from datetime import timedelta
from decimal import Decimal
from unittest import mock

import pytest
from django.contrib.admin.models import LogEntry
from django.core.management import CommandError, call_command
from django.db import connections, transaction
from django.db.models import Sum
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import SmsCode, SmsCodeRequest, SmsMessage, User
from accounts.services import sms_code_request, tokens_for, user_signup
from accounts.sms.delivery import sms_enqueue
from core.errors import AppError
from loyalty.models import (
    EventRule,
    ExpiryReminder,
    IdempotentRequest,
    LedgerEntry,
    Lot,
    Member,
    MemberEvent,
    Purchase,
    Redemption,
)
from loyalty.services import reminders
from loyalty.services.erasure import customer_erase
from loyalty.services.members import member_link_user
from loyalty.services.points import Cause, credit, member_lock
from loyalty.services.redemptions import redemption_hold
from loyalty.services.refunds import refund_record
from loyalty.services.reminders import expiry_reminders_send
from tests.admin import staff_member
from tests.factories import earn
from tests.invariants import assert_ledger_consistent
from webhooks.models import Attempt, Delivery, Endpoint, Event

pytestmark = pytest.mark.django_db

PHONE = "+8613800138000"
MASKED = "+86138****8000"
OTHER_PHONE = "+8613900139000"
MEMBERS = "/admin/loyalty/member/"
CODE = re.compile(r"\b[0-9]{6}\b")


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def customer(settings, store, store_client, django_capture_on_commit_callbacks):
    """A signed-up customer with a name, points earned, refunded and held, a purchase
    sent with an Idempotency-Key, a reset code and its text, and a code request not
    decided yet; and another customer."""
    user = User.objects.create_user(phone=PHONE, password="a long passphrase 2026", name="Wang")
    member = member_link_user(user=user)
    response = store_client.post(
        "/api/v1/purchases",
        {"phone": "138 0013 8000", "order_id": "POS-1", "amount": "500.00"},
        format="json",
        headers={"idempotency-key": "pos-1"},
    )
    assert response.status_code == 201, response.json()
    refund_record(store=store, order_id="POS-1", refund_id="R-1", amount=Decimal("100.00"))
    redemption_hold(
        store=store, member=member, order_id="POS-2", order_total=Decimal("80.00"), points=100
    )
    settings.SMS_CAP_PER_PHONE_PER_MINUTE = 2
    with django_capture_on_commit_callbacks(execute=True):
        sms_code_request(phone=PHONE, purpose="password_reset", client_ip="203.0.113.5")
    with django_capture_on_commit_callbacks(execute=False):
        sms_code_request(phone=PHONE, purpose="signup", client_ip="203.0.113.7")
    earn(store=store, phone=OTHER_PHONE, amount="200.00")
    with django_capture_on_commit_callbacks(execute=True):
        sms_code_request(phone=OTHER_PHONE, purpose="signup", client_ip="203.0.113.6")
    member.refresh_from_db()
    return member


def totals() -> dict:
    """What the merchant's reports add up: balances, entries, lots, purchases."""
    return {
        "balances": Member.objects.aggregate(total=Sum("balance"))["total"],
        "entries": LedgerEntry.objects.aggregate(total=Sum("points"))["total"],
        "entry_count": LedgerEntry.objects.count(),
        "lots_left": Lot.objects.aggregate(total=Sum("remaining"))["total"],
        "purchases": Purchase.objects.aggregate(total=Sum("amount"))["total"],
        "redemptions": Redemption.objects.count(),
    }


def test_erasure_removes_the_personal_data_and_keeps_the_ledger_and_the_totals(customer):
    before = totals()
    balance, entries = customer.balance, customer.entries.count()

    erasure = customer_erase(member_id=customer.pk)

    assert erasure.erased and erasure.account_deleted
    customer.refresh_from_db()
    assert customer.phone is None
    assert customer.erased_at is not None
    assert customer.user is None
    assert not User.objects.filter(phone=PHONE).exists()
    assert not User.objects.filter(name="Wang").exists()
    assert not SmsCode.objects.filter(phone=PHONE).exists()
    assert not SmsCodeRequest.objects.filter(phone=PHONE).exists()
    assert not SmsMessage.objects.filter(phone=PHONE).exists()
    # The ledger is the member's still, and the merchant's totals have not moved.
    assert (customer.balance, customer.entries.count()) == (balance, entries)
    assert totals() == before
    assert_ledger_consistent()
    # The other customer is untouched.
    assert Member.objects.get(phone=OTHER_PHONE).balance == 200
    assert SmsCode.objects.filter(phone=OTHER_PHONE).count() == 1
    assert SmsMessage.objects.filter(phone=OTHER_PHONE).count() == 1


def test_the_stored_answers_of_idempotent_requests_lose_the_phone(customer, store_client):
    erasure = customer_erase(member_id=customer.pk)

    assert erasure.answers_scrubbed == 1
    answer = IdempotentRequest.objects.get(key="pos-1")
    assert PHONE not in str(answer.response_body)
    assert answer.response_body["member"] == {"phone": None, "balance": 500}
    # A retry with that key moves no points: it is refused, not replayed or redone.
    retry = store_client.post(
        "/api/v1/purchases",
        {"phone": PHONE, "order_id": "POS-1", "amount": "500.00"},
        format="json",
        headers={"idempotency-key": "pos-1"},
    )
    assert retry.status_code == 409
    assert LedgerEntry.objects.filter(reference="POS-1").count() == 1


def test_a_storefronts_answer_that_echoed_the_phone_loses_it_in_the_delivery_log(customer, store):
    endpoint = Endpoint.objects.create(
        store=store, url="https://hooks.example.com/", event_types=["points.earned"]
    )
    event = Event.objects.create(type="points.earned", member=customer, data={"balance": 500})
    delivery = Delivery.objects.create(endpoint=endpoint, event=event, member_id=customer.pk)
    echoed = Attempt.objects.create(
        delivery=delivery,
        started_at=timezone.now(),
        duration_ms=20,
        status_code=200,
        response_excerpt=f'{{"received": {{"member": {{"phone": "{PHONE}"}}}}}}',
    )
    other = Attempt.objects.create(
        delivery=delivery,
        started_at=timezone.now(),
        duration_ms=20,
        status_code=200,
        response_excerpt=f"ok {OTHER_PHONE}",
    )

    erasure = customer_erase(member_id=customer.pk)

    echoed.refresh_from_db()
    assert echoed.response_excerpt == '{"received": {"member": {"phone": ""}}}'
    other.refresh_from_db()
    assert other.response_excerpt == f"ok {OTHER_PHONE}"
    assert erasure.answers_scrubbed == 2


def test_the_customers_tokens_stop_working(customer):
    tokens = tokens_for(customer.user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['access']}")
    assert client.get("/api/v1/me").status_code == 200

    customer_erase(member_id=customer.pk)

    assert client.get("/api/v1/me").status_code == 401
    refreshed = APIClient().post(
        "/api/v1/auth/token/refresh", {"refresh": tokens["refresh"]}, format="json"
    )
    assert refreshed.status_code == 401
    login = APIClient().post(
        "/api/v1/auth/token",
        {"phone": PHONE, "password": "a long passphrase 2026"},
        format="json",
    )
    assert login.status_code == 401


def test_a_new_purchase_with_the_phone_starts_a_new_member(customer, store):
    customer_erase(member_id=customer.pk)

    earn(store=store, phone=PHONE, amount="30.00")

    new_member = Member.objects.get(phone=PHONE)
    assert new_member.pk != customer.pk
    assert new_member.balance == 30
    assert Member.objects.get(pk=customer.pk).balance == customer.balance
    assert_ledger_consistent()


@pytest.fixture
def sign_up(settings, django_capture_on_commit_callbacks, sms_outbox):
    """A customer signs up as in the app: a code by text, then the account. Returns
    the new member."""
    settings.SMS_CAP_PER_PHONE_PER_MINUTE = 2

    def sign_up(phone: str) -> Member:
        sent_before = len(sms_outbox)
        with django_capture_on_commit_callbacks(execute=True):
            sms_code_request(phone=phone, purpose="signup", client_ip="203.0.113.5")
        [text] = sms_outbox[sent_before:]
        code = CODE.search(text["body"]).group()
        user_signup(phone=phone, code=code, password="a long passphrase 2026")
        return Member.objects.get(phone=phone)

    return sign_up


def test_signing_up_again_after_erasure_pays_no_second_signup_bonus(db, sign_up):
    # The program's sign-up rule (a migration makes it, switched off), turned on
    EventRule.objects.update_or_create(
        event_type=EventRule.BuiltIn.SIGNUP,
        defaults={"name_en": "Sign-up", "name_zh": "注册", "points": 100, "is_active": True},
    )
    first = sign_up(PHONE)
    assert first.balance == 100

    customer_erase(member_id=first.pk)
    again = sign_up(PHONE)

    # A new member, whose sign-up is recorded with nothing paid and why
    assert again.pk != first.pk
    assert again.balance == 0
    assert list(again.events.values_list("event_type", "points", "outcome")) == [
        ("signup", 0, MemberEvent.Outcome.ALREADY_PAID)
    ]
    # The erased member keeps its event and the points it paid
    first.refresh_from_db()
    assert first.balance == 100
    assert list(first.events.values_list("event_type", "points", "outcome")) == [
        ("signup", 100, MemberEvent.Outcome.PAID)
    ]
    assert_ledger_consistent()


def test_an_erased_member_gets_no_expiry_reminder(customer, django_capture_on_commit_callbacks):
    with transaction.atomic():
        credit(
            member=member_lock(customer.pk),
            kind=LedgerEntry.Kind.EARN,
            points=50,
            expires_at=timezone.now() + timedelta(days=3),
            cause=Cause(reference="goodwill"),
        )
    customer_erase(member_id=customer.pk)

    with django_capture_on_commit_callbacks(execute=True):
        assert expiry_reminders_send() == 0

    assert not ExpiryReminder.objects.exists()
    assert not SmsMessage.objects.exclude(phone=OTHER_PHONE).exists()


def test_erasing_twice_does_nothing_more(customer):
    customer_erase(member_id=customer.pk)
    erased_at = Member.objects.get(pk=customer.pk).erased_at

    again = customer_erase(member_id=customer.pk)

    assert not again.erased
    assert Member.objects.get(pk=customer.pk).erased_at == erased_at


def test_a_staff_account_is_refused_and_nothing_is_erased(store):
    staff = User.objects.create_user(phone=PHONE, is_staff=True)
    member = member_link_user(user=staff)

    with pytest.raises(AppError) as refusal:
        customer_erase(member_id=member.pk)

    assert refusal.value.code == "invalid_state"
    assert Member.objects.get(pk=member.pk).phone == PHONE
    assert User.objects.filter(pk=staff.pk).exists()


def test_the_erasure_is_logged_with_the_phone_masked(customer, caplog):
    with caplog.at_level(logging.INFO, logger="loyalty.services.erasure"):
        customer_erase(member_id=customer.pk)

    assert MASKED in caplog.text
    assert PHONE not in caplog.text


# --- manage.py erase_customer -------------------------------------------------


def test_the_command_takes_the_phone_in_any_format_and_prints_one_line(customer, capsys):
    call_command("erase_customer", "138-0013-8000", "--yes")

    output = capsys.readouterr().out
    assert output.count("\n") == 1
    assert f"erased member #{customer.pk}" in output
    assert Member.objects.get(pk=customer.pk).phone is None


def test_the_command_asks_first_and_erases_nothing_without_a_yes(customer, monkeypatch):
    monkeypatch.setattr("builtins.input", lambda question: "no")

    with pytest.raises(CommandError, match="Nothing erased"):
        call_command("erase_customer", PHONE)

    assert Member.objects.get(pk=customer.pk).phone == PHONE


def test_the_command_erases_once_confirmed(customer, monkeypatch):
    questions = []
    monkeypatch.setattr("builtins.input", lambda question: questions.append(question) or "yes")

    call_command("erase_customer", PHONE)

    assert MASKED in questions[0]
    assert PHONE not in questions[0]
    assert Member.objects.get(pk=customer.pk).phone is None


@pytest.mark.parametrize(
    ("phone", "message"),
    [("13900000000", "No member has the phone"), ("not a phone", "not a mobile phone number")],
)
def test_the_command_refuses_an_unknown_or_invalid_phone(db, phone, message):
    with pytest.raises(CommandError, match=message):
        call_command("erase_customer", phone, "--yes")


# --- the admin action -----------------------------------------------------------


def erase_action(client, *members, confirmed: bool):
    data = {"action": "erase_personal_data", "_selected_action": [m.pk for m in members]}
    if confirmed:
        data["post"] = "yes"
    return client.post(MEMBERS, data, follow=confirmed)


def test_a_superuser_is_asked_first_then_the_members_are_erased(customer, client):
    superuser = User.objects.create_superuser(phone="+8613900000001", password="x" * 20)
    client.force_login(superuser)
    other = Member.objects.get(phone=OTHER_PHONE)

    asked = erase_action(client, customer, other, confirmed=False)

    assert asked.status_code == 200
    page = asked.content.decode()
    assert "This cannot be undone" in page
    assert MASKED in page and PHONE not in page
    assert Member.objects.filter(phone__isnull=True).count() == 0

    done = erase_action(client, customer, other, confirmed=True)

    assert "Erased the personal data of 2 members; the ledger is kept." in done.content.decode()
    assert Member.objects.filter(pk__in=[customer.pk, other.pk], phone__isnull=False).count() == 0
    # The member's history names who erased it, and the member by number only.
    entry = LogEntry.objects.get(object_id=str(customer.pk), change_message__contains="Erased")
    assert (entry.user, entry.object_repr) == (superuser, f"#{customer.pk}")
    assert_ledger_consistent()


def test_staff_without_superuser_status_have_no_erase_action(customer, client):
    clerk = staff_member("+8613900000002", "view_member")
    client.force_login(clerk)

    listing = client.get(MEMBERS)
    assert "erase_personal_data" not in listing.content.decode()
    erase_action(client, customer, confirmed=True)

    assert Member.objects.get(pk=customer.pk).phone == PHONE


# --- an erasure beside the reminder job ----------------------------------------


@pytest.mark.django_db(transaction=True)
def test_an_erasure_while_a_reminder_is_queued_waits_and_leaves_no_text_with_the_phone(store):
    earn(store=store, phone=PHONE, amount="100.00")
    member = Member.objects.get(phone=PHONE)
    with transaction.atomic():
        credit(
            member=member_lock(member.pk),
            kind=LedgerEntry.Kind.EARN,
            points=50,
            expires_at=timezone.now() + timedelta(days=3),
            cause=Cause(reference="goodwill"),
        )
    queueing, go_on = threading.Event(), threading.Event()

    def enqueue_slowly(**text):
        queueing.set()
        assert go_on.wait(10)
        return sms_enqueue(**text)

    def in_thread(work):
        def run():
            try:
                work()
            finally:
                connections.close_all()

        thread = threading.Thread(target=run)
        thread.start()
        return thread

    # given the reminder job in the middle of queueing the member's text
    with mock.patch.object(reminders, "sms_enqueue", enqueue_slowly):
        reminding = in_thread(expiry_reminders_send)
        assert queueing.wait(10)

        # when the customer is erased meanwhile
        erasing = in_thread(lambda: customer_erase(member_id=member.pk))

        # then the erasure waits for the reminder's transaction, and erases its text too
        erasing.join(0.5)
        assert erasing.is_alive()
        go_on.set()
        reminding.join(10)
        erasing.join(10)

    assert Member.objects.get(pk=member.pk).phone is None
    assert not SmsMessage.objects.filter(phone=PHONE).exists()
    assert ExpiryReminder.objects.filter(member=member).count() == 1
