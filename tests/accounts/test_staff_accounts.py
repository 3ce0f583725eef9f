"""What an administrator does for a staff member who is locked out: a new password
(from another administrator's admin or the command line), and a reset of the second
factor when the phone is lost (from admin, or the command line when the only
superuser lost theirs)."""

import re
from io import StringIO
from unittest import mock

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse
from django_otp.plugins.otp_static.models import StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import User
from accounts.staff_otp import staff_recovery_codes_issue
from tests.staff_otp import authenticator_app

pytestmark = pytest.mark.django_db

PHONE = "+8613900000009"
OLD_PASSWORD = "counter staff 2026"
NEW_PASSWORD = "a new one for the till 2027"


@pytest.fixture
def superuser():
    return User.objects.create_superuser(phone=PHONE, password=OLD_PASSWORD)


def password_step(client, password: str):
    return client.post(
        "/admin/login/?next=/admin/", {"username": PHONE, "password": password}, follow=True
    )


def test_the_only_superuser_who_lost_the_phone_is_reset_from_the_command_line(superuser):
    authenticator_app(superuser)
    staff_recovery_codes_issue(user=superuser)
    out = StringIO()

    call_command("staff_otp_reset", "139 0000 0009", stdout=out)

    assert out.getvalue() == (
        "Reset the two-factor login of +86139****0009: they set it up again at their next login.\n"
    )
    assert not TOTPDevice.objects.exists()
    assert not StaticToken.objects.exists()
    response = password_step(Client(), OLD_PASSWORD)
    assert response.redirect_chain[-1][0].startswith("/admin/two-factor/enrol/")


def test_the_reset_command_says_when_there_was_nothing_to_reset(superuser):
    out = StringIO()

    call_command("staff_otp_reset", PHONE, stdout=out)

    assert out.getvalue() == "+86139****0009 had no two-factor login; nothing to reset.\n"


@pytest.mark.parametrize(
    ("phone", "refusal"),
    [
        ("13900000008", "No account has the phone +86139****0008."),
        ("12345", "That is not a mobile phone number."),
    ],
)
def test_the_reset_command_refuses_a_phone_with_no_account(superuser, phone, refusal):
    authenticator_app(superuser)

    with pytest.raises(CommandError, match=re.escape(refusal)):
        call_command("staff_otp_reset", phone, stdout=StringIO())

    assert TOTPDevice.objects.exists()


@pytest.mark.parametrize("typed", ["13900000009", "+8613900000009", "139 0000 0009"])
def test_changepassword_takes_the_phone_as_people_write_it(superuser, typed):
    with mock.patch("getpass.getpass", return_value=NEW_PASSWORD):
        call_command("changepassword", typed, stdout=StringIO())

    superuser.refresh_from_db()
    assert superuser.check_password(NEW_PASSWORD)
    assert (
        password_step(Client(), NEW_PASSWORD).redirect_chain[-1][0].startswith("/admin/two-factor/")
    )


def test_another_administrator_sets_a_new_password_on_the_users_page(superuser, client):
    clerk = User.objects.create_user(phone="+8613900000001", password=OLD_PASSWORD, is_staff=True)
    client.force_login(superuser)

    response = client.post(
        reverse("admin:auth_user_password_change", args=[clerk.pk]),
        {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD, "usable_password": "true"},
    )

    assert response.status_code == 302
    clerk.refresh_from_db()
    assert clerk.check_password(NEW_PASSWORD)
    browser = Client()
    browser.post("/admin/login/", {"username": "13900000001", "password": NEW_PASSWORD})
    assert browser.get("/admin/").status_code == 200


def test_the_demo_login_says_how_the_second_factor_is_set_up(monkeypatch, settings, tmp_path):
    settings.VAR_DIR = tmp_path
    monkeypatch.setenv("DEMO_STAFF_PHONE", PHONE)
    monkeypatch.setenv("DEMO_STAFF_PASSWORD", OLD_PASSWORD)
    first_start = StringIO()
    call_command("seed_demo", stdout=first_start)
    authenticator_app(User.objects.get(phone=PHONE))
    next_start = StringIO()
    call_command("seed_demo", stdout=next_start)

    assert first_start.getvalue().splitlines()[:2] == [
        f"Staff login: {PHONE} / {OLD_PASSWORD}",
        "Then: the first login sets up two-factor login (an authenticator app scans a QR code).",
    ]
    assert next_start.getvalue().splitlines()[1] == (
        "Then: a code from the authenticator app set up before "
        f"(lost it? .venv/bin/python manage.py staff_otp_reset {PHONE})."
    )
