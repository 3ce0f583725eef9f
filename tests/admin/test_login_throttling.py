"""Failed admin logins are limited per phone and address, before the password is
checked (accounts/login_guard.py): a wrong password and a wrong code are both a
failed login, and the login page says how long to wait."""

import re
from unittest import mock

import pytest
import time_machine
from django.test import Client
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import User
from accounts.staff_otp import staff_recovery_codes_issue
from tests.concurrency import run_together
from tests.staff_otp import app_code, authenticator_app

PHONE = "+8613900000009"
PASSWORD = "counter staff 2026"
ATTACKER = "198.51.100.7"
STAFF_AT_THE_SHOP = "203.0.113.20"
LOCKED_OUT = re.compile(r"Too many failed logins\. Try again in (\d+) seconds?\.")


@pytest.fixture
def limits(settings):
    """Five failures a phone from one address; the phone alone slows down only later, so
    these tests see the hard limit on its own."""
    settings.LOGIN_FAILURES_PER_PHONE_AND_IP = 5
    settings.LOGIN_FAILURES_PER_PHONE_BEFORE_DELAY = 50


def password_step(client, phone: str, password: str, address: str):
    return client.post(
        "/admin/login/?next=/admin/",
        {"username": phone, "password": password},
        REMOTE_ADDR=address,
    )


def lockout(response) -> str:
    match = LOCKED_OUT.search(response.content.decode())
    return match and match.group(0)


@pytest.mark.django_db(transaction=True)
def test_forty_parallel_wrong_passwords_get_the_limit_checked_then_the_right_one_waits(limits):
    User.objects.create_superuser(phone=PHONE, password=PASSWORD)
    checked = []
    check_password = User.check_password

    def counted_check(user, raw_password):
        checked.append(raw_password)
        return check_password(user, raw_password)

    def guess(number: int):
        return lambda: password_step(Client(), PHONE, f"guess {number}", ATTACKER).status_code

    with mock.patch.object(User, "check_password", counted_check):
        answers = run_together([guess(n) for n in range(40)])
        browser = Client()
        right = password_step(browser, PHONE, PASSWORD, ATTACKER)

    assert len(checked) == 5
    assert sorted(answers) == [200] * 5 + [429] * 35
    assert right.status_code == 429
    assert int(LOCKED_OUT.search(right.content.decode()).group(1)) > 0
    assert PASSWORD not in checked
    assert browser.get("/admin/").status_code == 302


def test_the_lockout_says_the_same_for_a_phone_with_no_account(db, limits):
    User.objects.create_superuser(phone=PHONE, password=PASSWORD)
    for _ in range(5):
        password_step(Client(), PHONE, "wrong", ATTACKER)
        password_step(Client(), "+8613900000008", "wrong", ATTACKER)

    staff = password_step(Client(), PHONE, "wrong", ATTACKER)
    nobody = password_step(Client(), "+8613900000008", "wrong", ATTACKER)

    assert staff.status_code == nobody.status_code == 429
    assert re.sub(r"\d+ seconds?", "", lockout(staff)) == re.sub(
        r"\d+ seconds?", "", lockout(nobody)
    )


def test_a_phone_locked_from_one_address_logs_in_from_another(db, limits):
    staff = User.objects.create_superuser(phone=PHONE, password=PASSWORD)
    app = authenticator_app(staff)
    for _ in range(6):
        password_step(Client(), PHONE, "wrong", ATTACKER)
    assert lockout(password_step(Client(), PHONE, PASSWORD, ATTACKER))

    browser = Client()
    response = password_step(browser, PHONE, PASSWORD, STAFF_AT_THE_SHOP)
    code = browser.post(
        "/admin/two-factor/verify/", {"code": app_code(app)}, REMOTE_ADDR=STAFF_AT_THE_SHOP
    )

    assert response.status_code == 302
    assert code.status_code == 302
    assert browser.get("/admin/", REMOTE_ADDR=STAFF_AT_THE_SHOP).status_code == 200


def test_national_and_international_formats_share_one_count(db, limits):
    User.objects.create_superuser(phone=PHONE, password=PASSWORD)
    for typed in [
        "13900000009",
        "+86 139 0000 0009",
        "139-0000-0009",
        "+8613900000009",
        "13900000009",
    ]:
        password_step(Client(), typed, "wrong", ATTACKER)

    assert lockout(password_step(Client(), PHONE, PASSWORD, ATTACKER))


def test_wrong_codes_are_failed_logins_too(db, limits):
    staff = User.objects.create_superuser(phone=PHONE, password=PASSWORD)
    app = authenticator_app(staff)
    recovery_code = staff_recovery_codes_issue(user=staff)[0]
    browser = Client()
    password_step(browser, PHONE, PASSWORD, ATTACKER)
    wrong = "000000" if app_code(app) != "000000" else "111111"

    # Each wrong code makes the app wait 1 s, 2 s, 4 s … before it checks the next: the
    # attacker waits as long, so that every guess is checked.
    with time_machine.travel(timezone.now(), tick=False) as clock:
        for wait in [1, 2, 4, 8, 16]:
            browser.post("/admin/two-factor/verify/", {"code": wrong}, REMOTE_ADDR=ATTACKER)
            clock.shift(wait)
    assert TOTPDevice.objects.get().throttling_failure_count == 5
    refused = browser.post(
        "/admin/two-factor/verify/", {"code": recovery_code}, REMOTE_ADDR=ATTACKER
    )

    assert refused.status_code == 429
    assert lockout(refused)
    assert browser.get("/admin/", REMOTE_ADDR=ATTACKER).status_code == 302
    # Counted where passwords are: the password step is closed at that address too.
    assert lockout(password_step(Client(), PHONE, PASSWORD, ATTACKER))
    # The refused recovery code was not used up.
    other = Client()
    password_step(other, PHONE, PASSWORD, STAFF_AT_THE_SHOP)
    accepted = other.post(
        "/admin/two-factor/verify/", {"code": recovery_code}, REMOTE_ADDR=STAFF_AT_THE_SHOP
    )
    assert accepted.status_code == 302


def test_after_a_wrong_code_the_app_waits_before_it_checks_the_next(db, limits):
    staff = User.objects.create_superuser(phone=PHONE, password=PASSWORD)
    app = authenticator_app(staff)
    browser = Client()
    password_step(browser, PHONE, PASSWORD, STAFF_AT_THE_SHOP)
    wrong = "000000" if app_code(app) != "000000" else "111111"

    with time_machine.travel(timezone.now(), tick=False) as clock:
        browser.post("/admin/two-factor/verify/", {"code": wrong}, REMOTE_ADDR=STAFF_AT_THE_SHOP)
        right = app_code(app)
        at_once = browser.post(
            "/admin/two-factor/verify/", {"code": right}, REMOTE_ADDR=STAFF_AT_THE_SHOP
        )
        clock.shift(1)
        a_second_later = browser.post(
            "/admin/two-factor/verify/", {"code": right}, REMOTE_ADDR=STAFF_AT_THE_SHOP
        )

    assert at_once.status_code == 429
    assert "Wait 1 second before trying another code." in at_once.content.decode()
    assert a_second_later.status_code == 302
