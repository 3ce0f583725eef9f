"""The customer auth endpoints: sign-up, login, refresh and reset; the same answer
for known and unknown phones; failed logins slowed down; a reset kills old tokens."""

import re
import time
from datetime import datetime, timedelta
from unittest import mock
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.contrib.auth.hashers import MD5PasswordHasher
from django.core.cache import cache
from rest_framework.test import APIClient

from accounts import services
from accounts.models import User
from tests.concurrency import run_together

pytestmark = pytest.mark.django_db

PHONE = "+8613800138000"
KNOWN = "+8613800138000"
UNKNOWN = "+8613900139000"
PASSWORD = "a long passphrase 2026"
NEW_PASSWORD = "another long passphrase 2027"
START = datetime(2026, 7, 6, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
SMS_CODES_URL = "/api/v1/auth/sms-codes"
SIGNUP_URL = "/api/v1/auth/signup"
TOKEN_URL = "/api/v1/auth/token"
REFRESH_URL = "/api/v1/auth/token/refresh"
RESET_URL = "/api/v1/auth/password-reset"
ME_URL = "/api/v1/me"
CODE = re.compile(r"\b[0-9]{6}\b")


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # Argon2 takes a tenth of a second a hash by design; these tests are about the API.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def api():
    return APIClient()


@pytest.fixture
def clock():
    with time_machine.travel(START, tick=False) as traveller:
        yield traveller


@pytest.fixture
def customer(db):
    return User.objects.create_user(phone=KNOWN, password=PASSWORD)


@pytest.fixture
def ask(api, django_capture_on_commit_callbacks):
    """POST auth/sms-codes and run the on-commit task that sends the text."""

    def ask(phone=PHONE, purpose="signup", ip="10.0.0.1"):
        with django_capture_on_commit_callbacks(execute=True):
            return api.post(
                SMS_CODES_URL, {"phone": phone, "purpose": purpose}, format="json", REMOTE_ADDR=ip
            )

    return ask


@pytest.fixture
def code_for(ask, sms_outbox):
    """Ask for a code and read it from the text the phone received."""

    def code_for(phone=PHONE, purpose="signup"):
        assert ask(phone, purpose).status_code == 202
        assert sms_outbox[-1]["to"] == phone
        return CODE.search(sms_outbox[-1]["body"]).group()

    return code_for


@pytest.fixture
def sign_up(api, code_for):
    def sign_up(phone=PHONE, password=PASSWORD):
        response = api.post(
            SIGNUP_URL,
            {"phone": phone, "code": code_for(phone), "password": password},
            format="json",
        )
        assert response.status_code == 201, response.json()
        return response.json()

    return sign_up


def login(api, phone=PHONE, password=PASSWORD, ip="10.0.0.1"):
    return api.post(
        TOKEN_URL, {"phone": phone, "password": password}, format="json", REMOTE_ADDR=ip
    )


def refresh(api, token):
    return api.post(REFRESH_URL, {"refresh": token}, format="json")


def me(access):
    return APIClient().get(ME_URL, HTTP_AUTHORIZATION=f"Bearer {access}")


def error_code(response):
    return response.json()["error"]["code"]


# --- Sign-up -------------------------------------------------------------------


def test_signup_with_the_code_answers_tokens_that_open_the_customers_page(api, sign_up):
    tokens = sign_up()

    assert set(tokens) == {"access", "refresh"}
    response = me(tokens["access"])
    assert response.status_code == 200
    assert response.json()["phone"] == PHONE
    assert login(api).status_code == 200


def test_signup_accepts_the_national_format_and_stores_e164(api, ask, sms_outbox):
    assert ask("138 0013 8000").status_code == 202
    [text] = sms_outbox
    assert text["to"] == PHONE
    code = CODE.search(text["body"]).group()

    response = api.post(
        SIGNUP_URL, {"phone": "13800138000", "code": code, "password": PASSWORD}, format="json"
    )

    assert response.status_code == 201
    assert User.objects.get().phone == PHONE


def test_a_weak_password_is_refused_without_using_up_the_code(api, code_for):
    code = code_for()

    weak = api.post(SIGNUP_URL, {"phone": PHONE, "code": code, "password": "123"}, format="json")

    assert weak.status_code == 400
    assert error_code(weak) == "validation_error"
    assert "password" in weak.json()["error"]["details"]
    strong = api.post(
        SIGNUP_URL, {"phone": PHONE, "code": code, "password": PASSWORD}, format="json"
    )
    assert strong.status_code == 201


@pytest.mark.parametrize(
    "password",
    ["13800138000", "+8613800138000", "+86 138-0013-8000", "(138) 0013.8000 mine"],
)
def test_the_phone_number_is_refused_as_the_password_in_any_format(api, code_for, password):
    code = code_for()

    response = api.post(
        SIGNUP_URL, {"phone": PHONE, "code": code, "password": password}, format="json"
    )

    assert response.status_code == 400
    assert error_code(response) == "validation_error"
    assert (
        "The password cannot contain your phone number."
        in (response.json()["error"]["details"]["password"])
    )
    assert not User.objects.exists()


def test_a_phone_signs_up_only_once(api, sign_up, ask, sms_outbox, settings):
    settings.SMS_CAP_PER_PHONE_PER_MINUTE = 5
    sign_up()

    # A second sign-up code request gets a text with no code in it
    assert ask().status_code == 202
    assert not CODE.search(sms_outbox[-1]["body"])
    response = api.post(
        SIGNUP_URL, {"phone": PHONE, "code": "123456", "password": NEW_PASSWORD}, format="json"
    )

    assert response.status_code == 422
    assert error_code(response) == "invalid_code"
    assert User.objects.count() == 1
    assert login(api).status_code == 200


def test_a_live_signup_code_for_a_phone_registered_meanwhile_is_refused(api, code_for):
    # Given a sign-up code sent while the phone had no account
    code = code_for()
    # and the phone registered since by another way in (staff in admin)
    User.objects.create_user(phone=PHONE, password=PASSWORD)

    response = api.post(
        SIGNUP_URL, {"phone": PHONE, "code": code, "password": NEW_PASSWORD}, format="json"
    )

    assert response.status_code == 422
    assert error_code(response) == "invalid_code"
    assert User.objects.get().check_password(PASSWORD)


# --- Login and refresh ---------------------------------------------------------


def test_login_answers_an_access_and_a_refresh_token(api, customer):
    response = login(api, phone="13800138000")

    assert response.status_code == 200
    assert set(response.json()) == {"access", "refresh"}
    assert me(response.json()["access"]).json()["phone"] == PHONE


def test_a_wrong_password_is_401_not_authenticated(api, customer):
    response = login(api, password="not the password")

    assert response.status_code == 401
    assert error_code(response) == "not_authenticated"


def test_refresh_answers_a_new_access_token_only(api, customer):
    tokens = login(api).json()

    response = refresh(api, tokens["refresh"])

    assert response.status_code == 200
    assert set(response.json()) == {"access"}
    assert me(response.json()["access"]).status_code == 200


@pytest.mark.parametrize("which", ["garbage", "access-token", "tampered"])
def test_refresh_refuses_what_is_not_a_valid_refresh_token(api, customer, which):
    tokens = login(api).json()
    token = {
        "garbage": "not.a.token",
        "access-token": tokens["access"],
        "tampered": tokens["refresh"][:-4]
        + ("AAAA" if tokens["refresh"][-4:] != "AAAA" else "BBBB"),
    }[which]

    response = refresh(api, token)

    assert response.status_code == 401
    assert error_code(response) == "not_authenticated"


def test_a_refresh_token_does_not_open_customer_endpoints(api, customer):
    tokens = login(api).json()

    response = me(tokens["refresh"])

    assert response.status_code == 401
    assert error_code(response) == "not_authenticated"


def test_an_access_token_stops_working_after_its_lifetime(api, customer, clock):
    tokens = login(api).json()
    clock.shift(timedelta(minutes=14, seconds=59))
    assert me(tokens["access"]).status_code == 200

    clock.shift(timedelta(seconds=2))

    assert me(tokens["access"]).status_code == 401
    # The refresh token gets a fresh one
    assert me(refresh(api, tokens["refresh"]).json()["access"]).status_code == 200


def test_a_deactivated_customer_loses_every_way_in(api, customer):
    tokens = login(api).json()
    customer.is_active = False
    customer.save(update_fields=["is_active"])

    assert me(tokens["access"]).status_code == 401
    assert refresh(api, tokens["refresh"]).status_code == 401
    assert login(api).status_code == 401


# --- Password reset ----------------------------------------------------------------


def test_a_reset_sets_the_new_password(api, customer, code_for):
    code = code_for(purpose="password_reset")

    response = api.post(
        RESET_URL, {"phone": PHONE, "code": code, "new_password": NEW_PASSWORD}, format="json"
    )

    assert response.status_code == 204
    assert response.content == b""
    assert login(api, password=PASSWORD).status_code == 401
    assert login(api, password=NEW_PASSWORD).status_code == 200


def test_a_reset_with_a_weak_password_is_refused_without_using_up_the_code(api, customer, code_for):
    code = code_for(purpose="password_reset")

    weak = api.post(
        RESET_URL, {"phone": PHONE, "code": code, "new_password": "password"}, format="json"
    )

    assert weak.status_code == 400
    assert error_code(weak) == "validation_error"
    strong = api.post(
        RESET_URL, {"phone": PHONE, "code": code, "new_password": NEW_PASSWORD}, format="json"
    )
    assert strong.status_code == 204


def test_a_reset_revokes_every_token_issued_before_it(settings, api, sign_up, code_for):
    settings.SMS_CAP_PER_PHONE_PER_MINUTE = 2
    # Given two sessions: the sign-up's and a later login's, and an access token
    # obtained by refreshing
    from_signup = sign_up()
    from_login = login(api).json()
    refreshed_access = refresh(api, from_login["refresh"]).json()["access"]
    old_access = [from_signup["access"], from_login["access"], refreshed_access]
    old_refresh = [from_signup["refresh"], from_login["refresh"]]
    assert all(me(access).status_code == 200 for access in old_access)

    # When the customer resets the password
    code = code_for(purpose="password_reset")
    response = api.post(
        RESET_URL, {"phone": PHONE, "code": code, "new_password": NEW_PASSWORD}, format="json"
    )
    assert response.status_code == 204

    # Then no earlier token opens anything, and no earlier refresh token refreshes
    for access in old_access:
        response = me(access)
        assert response.status_code == 401
        assert error_code(response) == "not_authenticated"
    for token in old_refresh:
        response = refresh(api, token)
        assert response.status_code == 401
        assert error_code(response) == "not_authenticated"
    # While tokens issued after the reset work
    fresh = login(api, password=NEW_PASSWORD).json()
    assert me(fresh["access"]).status_code == 200
    assert me(refresh(api, fresh["refresh"]).json()["access"]).status_code == 200


# --- The same answer for known and unknown phones --------------------------------


def _ask(api, ask, phone, ip, purpose):
    return ask(phone, purpose, ip=ip)


def _ask_twice(api, ask, phone, ip):
    ask(phone, "password_reset", ip=ip)
    return ask(phone, "password_reset", ip=ip)


def _signup_with_a_wrong_code(api, ask, phone, ip):
    with mock.patch("secrets.randbelow", return_value=123456):
        ask(phone, "signup", ip=ip)
    return api.post(
        SIGNUP_URL, {"phone": phone, "code": "654321", "password": NEW_PASSWORD}, format="json"
    )


def _signup_without_a_code_request(api, ask, phone, ip):
    return api.post(
        SIGNUP_URL, {"phone": phone, "code": "123456", "password": NEW_PASSWORD}, format="json"
    )


def _signup_with_a_weak_password(api, ask, phone, ip):
    return api.post(
        SIGNUP_URL, {"phone": phone, "code": "123456", "password": "12345678"}, format="json"
    )


def _login_with_a_wrong_password(api, ask, phone, ip):
    return login(api, phone=phone, password="not the password", ip=ip)


def _login_past_the_failure_limit(api, ask, phone, ip):
    for _ in range(5):
        login(api, phone=phone, password="not the password", ip=ip)
    return login(api, phone=phone, password=PASSWORD, ip=ip)


def _reset_with_a_wrong_code(api, ask, phone, ip):
    with mock.patch("secrets.randbelow", return_value=123456):
        ask(phone, "password_reset", ip=ip)
    return api.post(
        RESET_URL, {"phone": phone, "code": "654321", "new_password": NEW_PASSWORD}, format="json"
    )


def _reset_with_a_weak_password(api, ask, phone, ip):
    return api.post(
        RESET_URL, {"phone": phone, "code": "123456", "new_password": "qwerty"}, format="json"
    )


@pytest.mark.parametrize(
    ("attempt", "status"),
    [
        pytest.param(lambda *a: _ask(*a, "signup"), 202, id="sms-code-signup"),
        pytest.param(lambda *a: _ask(*a, "password_reset"), 202, id="sms-code-reset"),
        pytest.param(_ask_twice, 429, id="sms-code-throttled"),
        pytest.param(_signup_with_a_wrong_code, 422, id="signup-wrong-code"),
        pytest.param(_signup_without_a_code_request, 422, id="signup-no-code"),
        pytest.param(_signup_with_a_weak_password, 400, id="signup-weak-password"),
        pytest.param(_login_with_a_wrong_password, 401, id="token-wrong-password"),
        pytest.param(_login_past_the_failure_limit, 429, id="token-throttled"),
        pytest.param(_reset_with_a_wrong_code, 422, id="reset-wrong-code"),
        pytest.param(_reset_with_a_weak_password, 400, id="reset-weak-password"),
    ],
)
def test_known_and_unknown_phones_get_the_same_answer(api, ask, customer, attempt, status):
    known = attempt(api, ask, KNOWN, "10.0.0.1")
    unknown = attempt(api, ask, UNKNOWN, "10.0.0.2")

    assert known.status_code == unknown.status_code == status
    assert known.content == unknown.content


def test_login_runs_the_password_hasher_for_unknown_phones_too(api, customer):
    """So that a wrong password and an unknown phone take as long."""
    with mock.patch.object(
        MD5PasswordHasher, "encode", autospec=True, side_effect=MD5PasswordHasher.encode
    ) as encode:
        login(api, phone=KNOWN, password="not the password")
        known_hashes = encode.call_count
        login(api, phone=UNKNOWN, password="not the password")
        unknown_hashes = encode.call_count - known_hashes

    assert known_hashes == unknown_hashes == 1


# --- Failed logins slow down -------------------------------------------------------


@pytest.fixture
def counters_on_the_test_clock(settings):
    """Counters in a local-memory cache, whose windows end by the test's clock
    (Redis expires keys by its own clock, which time_machine cannot move)."""
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "auth"}
    }
    cache.clear()


def test_failed_logins_from_one_address_refuse_that_phone_there(settings, api, customer):
    settings.LOGIN_FAILURES_PER_PHONE_AND_IP = 3
    other = User.objects.create_user(phone=UNKNOWN, password=PASSWORD)
    for _ in range(3):
        assert login(api, password="not the password", ip="10.6.6.6").status_code == 401

    # Even the right password is refused from that address now
    response = login(api, ip="10.6.6.6")

    assert response.status_code == 429
    assert error_code(response) == "throttled"
    assert int(response["Retry-After"]) == response.json()["error"]["details"]["retry_after"]
    # The customer, from their own address, is not locked out
    assert login(api, ip="10.0.0.1").status_code == 200
    # Nor is another customer on the attacker's address
    assert login(api, phone=other.phone, ip="10.6.6.6").status_code == 200


def test_failures_from_many_addresses_slow_the_phone_down_never_lock_it(
    settings, api, customer, clock, counters_on_the_test_clock
):
    settings.LOGIN_FAILURES_PER_PHONE_BEFORE_DELAY = 3
    settings.LOGIN_DELAY_MAX_SECONDS = 8
    # Given an attacker who guesses from a new address each time
    addresses = (f"10.7.{n // 250}.{n % 250}" for n in range(1000))
    for _ in range(3):
        assert login(api, password="guess", ip=next(addresses)).status_code == 401

    # Each further guess must wait twice as long as the one before, up to the maximum
    waits = []
    for _ in range(6):
        assert login(api, password="guess", ip=next(addresses)).status_code == 401
        refused = login(api, password="guess", ip=next(addresses))
        assert refused.status_code == 429
        waits.append(refused.json()["error"]["details"]["retry_after"])
        clock.shift(timedelta(seconds=waits[-1]))
    assert waits == [1, 2, 4, 8, 8, 8]

    # And the customer, once the wait is over, logs in with the right password
    assert login(api, ip="10.0.0.1").status_code == 200


def test_failed_logins_per_ip_refuse_that_address_for_a_while(settings, api, customer):
    settings.LOGIN_FAILURES_PER_IP = 3
    for n in range(3):
        response = login(api, phone=f"+86137{n:08d}", password="guess", ip="10.6.6.6")
        assert response.status_code == 401

    response = login(api, ip="10.6.6.6")

    assert response.status_code == 429
    assert error_code(response) == "throttled"
    assert login(api, ip="10.0.0.1").status_code == 200


def test_successful_logins_are_not_counted_as_failures(settings, api, customer):
    settings.LOGIN_FAILURES_PER_PHONE_AND_IP = 2
    settings.LOGIN_FAILURES_PER_IP = 2
    settings.LOGIN_FAILURES_PER_PHONE_BEFORE_DELAY = 2

    assert [login(api).status_code for _ in range(6)] == [200] * 6


def test_parallel_guesses_get_no_more_tries_than_the_limit(settings, customer):
    """The count is taken before the password is checked: 40 guesses at once from one
    address, each checked as slowly as a real hash, get exactly the limit through."""
    settings.LOGIN_FAILURES_PER_PHONE_AND_IP = 5

    def slow_wrong_password(**credentials):
        time.sleep(0.05)

    def guess():
        return services.tokens_for_login(phone=KNOWN, password="guess", client_ip="10.6.6.6")

    with mock.patch.object(services, "authenticate", side_effect=slow_wrong_password):
        answers = [refused.code for refused in run_together([guess] * 40)]

    assert answers.count("not_authenticated") == 5
    assert answers.count("throttled") == 35


def test_the_login_limit_ends_with_its_window(
    settings, api, customer, clock, counters_on_the_test_clock
):
    settings.LOGIN_FAILURES_PER_PHONE_AND_IP = 2
    settings.LOGIN_FAILURE_WINDOW_SECONDS = 900
    for _ in range(2):
        login(api, password="not the password")
    clock.shift(timedelta(seconds=899))
    assert login(api).status_code == 429

    clock.shift(timedelta(seconds=2))

    assert login(api).status_code == 200


# --- Bad input is a 400, never a 500 ---------------------------------------------


@pytest.mark.parametrize(
    ("url", "body"),
    [
        (SMS_CODES_URL, {"phone": PHONE, "purpose": "login"}),
        (SMS_CODES_URL, {"phone": PHONE}),
        (SIGNUP_URL, {"phone": PHONE, "code": "12345", "password": PASSWORD}),
        (SIGNUP_URL, {"phone": PHONE, "code": "1234567", "password": PASSWORD}),
        (SIGNUP_URL, {"phone": PHONE, "code": 123456, "password": PASSWORD}),
        (SIGNUP_URL, {"phone": PHONE, "code": "١٢٣٤٥٦", "password": PASSWORD}),
        (SIGNUP_URL, {"phone": PHONE, "code": "123456", "password": "x" * 129}),
        (SIGNUP_URL, {"phone": PHONE, "code": "123456", "password": 12345678}),
        (TOKEN_URL, {"phone": PHONE, "password": ["a", "list"]}),
        (TOKEN_URL, {"phone": PHONE}),
        (REFRESH_URL, {"refresh": ""}),
        (REFRESH_URL, {"refresh": "x" * 2001}),
        (RESET_URL, {"phone": PHONE, "code": None, "new_password": NEW_PASSWORD}),
    ],
)
def test_bad_input_is_a_validation_error(api, customer, url, body):
    response = api.post(url, body, format="json")

    assert response.status_code == 400
    assert error_code(response) == "validation_error"


@pytest.mark.parametrize("url", [SMS_CODES_URL, SIGNUP_URL, TOKEN_URL, RESET_URL])
def test_a_bad_phone_is_invalid_phone(api, url):
    body = {
        SMS_CODES_URL: {"purpose": "signup"},
        SIGNUP_URL: {"code": "123456", "password": PASSWORD},
        TOKEN_URL: {"password": PASSWORD},
        RESET_URL: {"code": "123456", "new_password": NEW_PASSWORD},
    }[url]

    response = api.post(url, {"phone": "010-65529988", **body}, format="json")

    assert response.status_code == 400
    assert error_code(response) == "invalid_phone"
