"""SMS codes: six digits from `secrets`, kept only as a keyed hash, good for ten
minutes, once, for one phone and one purpose, burnt by five wrong guesses and
replaced by the next code; and the caps on sending them per phone, per client IP
and in total."""

import re
from datetime import datetime, timedelta
from unittest import mock
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.contrib.auth.models import Permission
from django.core.cache import cache
from rest_framework.test import APIClient

from accounts import services
from accounts.limits import Limit
from accounts.models import SmsCode, User
from core.errors import AppError
from tests.concurrency import run_together

pytestmark = pytest.mark.django_db

PHONE = "+8613800138000"
OTHER_PHONE = "+8613900139000"
UK_MOBILE = "+447400123456"
PASSWORD = "a long passphrase 2026"
NEW_PASSWORD = "another long passphrase 2027"
START = datetime(2026, 7, 6, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
SMS_CODES_URL = "/api/v1/auth/sms-codes"
SIGNUP_URL = "/api/v1/auth/signup"
RESET_URL = "/api/v1/auth/password-reset"
CODE = re.compile(r"\b[0-9]{6}\b")


def phone_number(n: int) -> str:
    return f"+86137{n:08d}"


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # Argon2 takes a tenth of a second a hash by design; these tests are about codes.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def api():
    return APIClient()


@pytest.fixture
def clock():
    with time_machine.travel(START, tick=False) as traveller:
        yield traveller


@pytest.fixture
def cache_on_the_test_clock(settings):
    """Counters in a local-memory cache, whose windows end by the test's clock.
    Redis expires keys by its own clock, which time_machine cannot move."""
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": "sms-code-tests",
        }
    }
    cache.clear()


@pytest.fixture
def ask(api, django_capture_on_commit_callbacks):
    """POST auth/sms-codes and run the on-commit task that sends the text."""

    def ask(phone=PHONE, purpose="signup", ip="10.0.0.1", **headers):
        with django_capture_on_commit_callbacks(execute=True):
            return api.post(
                SMS_CODES_URL,
                {"phone": phone, "purpose": purpose},
                format="json",
                REMOTE_ADDR=ip,
                **headers,
            )

    return ask


@pytest.fixture
def issue(django_capture_on_commit_callbacks, sms_outbox):
    """Ask the service for a code and return the code the SMS carried."""

    def issue(phone=PHONE, purpose="signup", client_ip="10.0.0.1"):
        sent_before = len(sms_outbox)
        with django_capture_on_commit_callbacks(execute=True):
            services.sms_code_request(phone=phone, purpose=purpose, client_ip=client_ip)
        [text] = sms_outbox[sent_before:]
        assert text["to"] == phone
        return CODE.search(text["body"]).group()

    return issue


def signup(api, code, phone=PHONE):
    return api.post(SIGNUP_URL, {"phone": phone, "code": code, "password": PASSWORD}, format="json")


def reset(api, code, phone=PHONE):
    return api.post(
        RESET_URL, {"phone": phone, "code": code, "new_password": NEW_PASSWORD}, format="json"
    )


def error_code(response):
    return response.json()["error"]["code"]


def another_code(code: str) -> str:
    return f"{(int(code) + 1) % 10**6:06d}"


@pytest.fixture
def customer(db):
    return User.objects.create_user(phone=PHONE, password=PASSWORD)


# --- What a code is --------------------------------------------------------------


def test_a_code_is_six_digits_drawn_from_secrets(issue, api):
    with mock.patch("secrets.randbelow", return_value=42) as randbelow:
        code = issue()

    randbelow.assert_called_once_with(10**6)
    assert code == "000042"
    assert signup(api, "000042").status_code == 201


def test_the_database_holds_only_a_keyed_hash_of_the_code(settings, issue):
    code = issue()

    row = SmsCode.objects.values().get()
    assert [field for field, value in row.items() if code in str(value)] == []
    # The hash is keyed by the server secret: rotating it kills every live code
    settings.SMS_CODE_SECRET = "a rotated server secret"
    with pytest.raises(AppError) as refused:
        services.user_signup(phone=PHONE, code=code, password=PASSWORD)
    assert refused.value.code == "invalid_code"
    assert not User.objects.exists()


@pytest.mark.parametrize(
    ("age", "status"),
    [
        pytest.param(timedelta(minutes=9, seconds=59), 201, id="tenth-minute"),
        pytest.param(timedelta(minutes=10, seconds=1), 422, id="eleventh-minute"),
    ],
)
def test_a_code_is_good_for_ten_minutes(clock, issue, api, age, status):
    code = issue()
    clock.shift(age)

    response = signup(api, code)

    assert response.status_code == status
    assert User.objects.filter(phone=PHONE).exists() == (status == 201)
    if status == 422:
        assert error_code(response) == "invalid_code"


def test_an_expired_code_is_refused_by_the_service_too(clock, issue):
    code = issue()
    clock.shift(timedelta(minutes=10, seconds=1))

    with pytest.raises(AppError) as refused:
        services.user_signup(phone=PHONE, code=code, password=PASSWORD)

    assert refused.value.code == "invalid_code"


def test_a_code_is_single_use(customer, issue, api):
    code = issue(purpose="password_reset")
    assert reset(api, code).status_code == 204

    response = reset(api, code)

    assert response.status_code == 422
    assert error_code(response) == "invalid_code"


def test_a_code_works_only_for_the_phone_it_was_sent_to(issue, api):
    # Given live sign-up codes for two phones
    with mock.patch("secrets.randbelow", side_effect=[111111, 222222]):
        issue(PHONE)
        issue(OTHER_PHONE)

    # When the other phone signs up with the first phone's code, it is refused
    response = signup(api, "111111", phone=OTHER_PHONE)
    assert response.status_code == 422
    assert error_code(response) == "invalid_code"
    assert not User.objects.filter(phone=OTHER_PHONE).exists()

    # And the first phone's code still signs the first phone up
    assert signup(api, "111111").status_code == 201


def test_a_reset_code_does_not_sign_up_and_a_signup_code_does_not_reset(customer, issue, api):
    # Given a reset code for the customer and a sign-up code for a new phone
    reset_code = issue(purpose="password_reset")
    signup_code = issue(phone=OTHER_PHONE, purpose="signup")

    # When each is used for the other purpose, both are refused
    assert reset(api, signup_code, phone=OTHER_PHONE).status_code == 422
    assert signup(api, reset_code).status_code == 422
    customer.refresh_from_db()
    assert customer.check_password(PASSWORD)

    # And each still works for its own purpose
    assert reset(api, reset_code).status_code == 204
    assert signup(api, signup_code, phone=OTHER_PHONE).status_code == 201


def test_five_wrong_guesses_burn_the_code(issue, api):
    code = issue()
    for _ in range(5):
        assert signup(api, another_code(code)).status_code == 422

    response = signup(api, code)

    assert response.status_code == 422
    assert error_code(response) == "invalid_code"
    assert not User.objects.exists()


def test_four_wrong_guesses_leave_the_code_usable(issue, api):
    code = issue()
    for _ in range(4):
        assert signup(api, another_code(code)).status_code == 422

    assert signup(api, code).status_code == 201


def test_wrong_guesses_burn_a_reset_code_too(customer, issue):
    code = issue(purpose="password_reset")
    for _ in range(5):
        with pytest.raises(AppError):
            services.password_reset(phone=PHONE, code=another_code(code), new_password=NEW_PASSWORD)

    with pytest.raises(AppError) as refused:
        services.password_reset(phone=PHONE, code=code, new_password=NEW_PASSWORD)

    assert refused.value.code == "invalid_code"
    customer.refresh_from_db()
    assert customer.check_password(PASSWORD)


def test_a_new_code_replaces_the_previous_one(settings, customer, issue, api):
    settings.SMS_CAP_PER_PHONE_PER_MINUTE = 5
    with mock.patch("secrets.randbelow", side_effect=[111111, 222222]):
        issue(purpose="password_reset")
        issue(purpose="password_reset")

    assert reset(api, "111111").status_code == 422
    assert reset(api, "222222").status_code == 204
    # Using up the new code does not bring the old one back
    assert reset(api, "111111").status_code == 422


def test_a_registered_phone_asking_for_a_signup_code_is_told_by_sms_and_gets_no_code(
    customer, ask, api, sms_outbox
):
    with mock.patch("secrets.randbelow", return_value=123456):
        assert ask(purpose="signup").status_code == 202

    [text] = sms_outbox
    assert text["to"] == PHONE
    assert "already has an account" in text["body"]
    assert not CODE.search(text["body"])
    # The code kept for the request, never sent, opens nothing
    assert error_code(signup(api, "123456")) == "invalid_code"
    assert User.objects.get().check_password(PASSWORD)


def test_an_unknown_phone_asking_for_a_reset_code_gets_nothing(ask, api, sms_outbox):
    with mock.patch("secrets.randbelow", return_value=123456):
        assert ask(purpose="password_reset").status_code == 202

    assert sms_outbox == []
    # Nor does guessing the code kept for the request, never sent, create anything
    assert error_code(reset(api, "123456")) == "invalid_code"
    assert not User.objects.exists()


# --- Who may be sent codes, and how many -------------------------------------


def test_numbers_outside_the_allowed_regions_are_refused(settings, ask, sms_outbox):
    response = ask(UK_MOBILE)

    assert response.status_code == 400
    assert error_code(response) == "invalid_phone"
    assert sms_outbox == []
    assert not SmsCode.objects.exists()

    # The regions are a setting
    settings.SMS_ALLOWED_REGIONS = ["CN", "GB"]
    assert ask(UK_MOBILE).status_code == 202
    assert [text["to"] for text in sms_outbox] == [UK_MOBILE]


def test_a_phone_gets_one_code_a_minute(ask, sms_outbox):
    assert ask(PHONE).status_code == 202

    response = ask(PHONE)

    assert response.status_code == 429
    assert error_code(response) == "throttled"
    assert len(sms_outbox) == 1
    # Another phone from the same client is not held back
    assert ask(OTHER_PHONE).status_code == 202


def test_the_phone_may_ask_again_once_the_minute_is_over(cache_on_the_test_clock, clock, ask):
    assert ask().status_code == 202
    clock.shift(timedelta(seconds=59))
    assert ask().status_code == 429

    clock.shift(timedelta(seconds=2))

    assert ask().status_code == 202


def test_a_phone_gets_five_codes_an_hour(cache_on_the_test_clock, clock, ask, sms_outbox):
    for _ in range(5):
        assert ask().status_code == 202
        clock.shift(timedelta(seconds=61))

    response = ask()

    assert response.status_code == 429
    assert error_code(response) == "throttled"
    assert len(sms_outbox) == 5
    # Once the hour that began with the first code is over, the phone may ask again
    clock.move_to(START + timedelta(hours=1, seconds=1))
    assert ask().status_code == 202


def test_each_client_ip_is_capped_per_hour(settings, ask, sms_outbox):
    settings.SMS_CAP_PER_IP_PER_HOUR = 3
    for n in range(3):
        assert ask(phone_number(n), ip="10.0.0.1").status_code == 202

    response = ask(phone_number(3), ip="10.0.0.1")

    assert response.status_code == 429
    assert error_code(response) == "throttled"
    assert len(sms_outbox) == 3
    assert ask(phone_number(4), ip="10.0.0.2").status_code == 202


def test_a_forged_forwarded_for_header_does_not_dodge_the_ip_cap(settings, ask):
    settings.SMS_CAP_PER_IP_PER_HOUR = 1
    assert ask(phone_number(0), HTTP_X_FORWARDED_FOR="203.0.113.1").status_code == 202

    response = ask(phone_number(1), HTTP_X_FORWARDED_FOR="203.0.113.2")

    assert response.status_code == 429


def test_codes_are_capped_in_total_per_hour(settings, ask, sms_outbox):
    settings.SMS_CAP_TOTAL_PER_HOUR = 3
    for n in range(3):
        assert ask(phone_number(n), ip=f"10.0.0.{n}").status_code == 202

    response = ask(phone_number(3), ip="10.0.0.3")

    assert response.status_code == 429
    assert error_code(response) == "throttled"
    assert len(sms_outbox) == 3


def test_one_client_past_its_ip_cap_does_not_use_up_everyones_total(settings, ask):
    settings.SMS_CAP_PER_IP_PER_HOUR = 2
    settings.SMS_CAP_TOTAL_PER_HOUR = 5
    for n in range(10):
        ask(phone_number(n), ip="10.6.6.6")

    assert ask(PHONE, ip="10.0.0.1").status_code == 202


def test_addresses_rotated_within_one_network_share_its_cap(settings, ask, sms_outbox):
    settings.SMS_CAP_PER_NETWORK_PER_HOUR = 4
    for n in range(4):
        assert ask(phone_number(n), ip=f"198.51.100.{n}").status_code == 202

    # A fifth address of the same /24 is refused; the next /24 is not
    assert ask(phone_number(4), ip="198.51.100.200").status_code == 429
    assert ask(phone_number(5), ip="198.51.101.1").status_code == 202
    assert len(sms_outbox) == 5


def test_an_ipv6_network_is_its_64(settings, ask):
    settings.SMS_CAP_PER_NETWORK_PER_HOUR = 2
    assert ask(phone_number(0), ip="2001:db8:0:1::1").status_code == 202
    assert ask(phone_number(1), ip="2001:db8:0:1:ffff:ffff:ffff:ffff").status_code == 202

    assert ask(phone_number(2), ip="2001:db8:0:1::2").status_code == 429
    assert ask(phone_number(3), ip="2001:db8:0:2::1").status_code == 202


def test_a_sweep_through_a_block_of_numbers_is_capped_whatever_the_address(settings, ask):
    settings.SMS_CAP_PER_NUMBER_PREFIX_PER_HOUR = 3
    # Numbers that differ only in their last four digits, each from its own network
    for n in range(3):
        assert ask(f"+861380013{n:04d}", ip=f"10.{n}.0.1").status_code == 202

    assert ask("+8613800139999", ip="10.9.0.1").status_code == 429
    # A number of another block is not held back
    assert ask("+8613900139999", ip="10.9.0.1").status_code == 202


def test_the_total_cap_tripping_is_logged_once_as_an_error_and_shown_in_admin(
    settings, ask, caplog, client
):
    settings.SMS_CAP_TOTAL_PER_HOUR = 2
    for n in range(2):
        assert ask(phone_number(n), ip=f"10.{n}.0.1").status_code == 202

    with caplog.at_level("WARNING"):
        for n in range(2, 5):
            assert ask(phone_number(n), ip=f"10.{n}.0.1").status_code == 429

    errors = [record for record in caplog.records if record.levelname == "ERROR"]
    assert len(errors) == 1
    assert "SMS_CAP_TOTAL_PER_HOUR" in errors[0].getMessage()
    # Staff who follow the texts see it on the admin's home page
    clerk = User.objects.create_user(phone="+8613900000001", is_staff=True)
    clerk.user_permissions.add(Permission.objects.get(codename="view_smsmessage"))
    client.force_login(clerk)
    assert "SMS_CAP_TOTAL_PER_HOUR" in client.get("/admin/").content.decode()


# --- Guesses at codes --------------------------------------------------------------


def test_new_codes_bring_no_fresh_guesses(settings, issue, api):
    """The attack: five wrong guesses burn a code, so ask for another, and another."""
    settings.SMS_CAP_PER_PHONE_PER_MINUTE = 10
    settings.SMS_CODE_WRONG_GUESSES_PER_PHONE_PER_HOUR = 10
    for _ in range(2):
        code = issue()
        for _ in range(5):
            assert error_code(signup(api, another_code(code))) == "invalid_code"

    # The third code is right, but the phone's guesses for the hour are spent
    code = issue()
    response = signup(api, code)

    assert response.status_code == 429
    assert error_code(response) == "throttled"
    assert not User.objects.exists()


def test_a_right_guess_does_not_spend_the_guess_budget(settings, customer, issue, api):
    settings.SMS_CAP_PER_PHONE_PER_MINUTE = 10
    settings.SMS_CODE_WRONG_GUESSES_PER_PHONE_PER_HOUR = 2
    for _ in range(4):
        assert reset(api, issue(purpose="password_reset")).status_code == 204


def test_the_guess_budget_is_per_phone_and_ends_with_its_hour(
    settings, cache_on_the_test_clock, clock, issue, api
):
    settings.SMS_CAP_PER_PHONE_PER_MINUTE = 10
    settings.SMS_CODE_WRONG_GUESSES_PER_PHONE_PER_HOUR = 3
    code = issue()
    for _ in range(3):
        signup(api, another_code(code))
    assert signup(api, code).status_code == 429
    # Another phone's guesses are its own
    assert signup(api, issue(phone=OTHER_PHONE), phone=OTHER_PHONE).status_code == 201

    clock.shift(timedelta(hours=1, seconds=1))

    assert signup(api, issue()).status_code == 201


def test_the_service_refuses_past_a_cap_with_throttled(issue):
    issue()

    with pytest.raises(AppError) as refused:
        services.sms_code_request(phone=PHONE, purpose="signup", client_ip="10.0.0.1")

    assert refused.value.code == "throttled"
    assert refused.value.status == 429


def test_concurrent_requests_never_overshoot_a_cap():
    limit = Limit("test-concurrent", 5, 60)

    allowed = run_together([lambda: limit.hit("+8613800138000")] * 20)

    assert allowed.count(True) == 5
