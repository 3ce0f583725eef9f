"""Staff accounts cannot be taken over, nor used, through the customer flows: an SMS
code is a customer-grade factor. The flows answer a staff phone exactly as an
unknown one; staff reset their password through another administrator or
`manage.py changepassword`."""

from unittest import mock

import pytest
from rest_framework.test import APIClient

from accounts.models import User
from accounts.services import tokens_for

pytestmark = pytest.mark.django_db

STAFF_PHONE = "+8613900000000"
UNKNOWN_PHONE = "+8613900139000"
PASSWORD = "the staff passphrase 2026"
NEW_PASSWORD = "an attacker's passphrase 2026"
THE_CODE = 123456


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(params=["superuser", "clerk"])
def staff(request):
    if request.param == "superuser":
        return User.objects.create_superuser(phone=STAFF_PHONE, password=PASSWORD)
    return User.objects.create_user(phone=STAFF_PHONE, password=PASSWORD, is_staff=True)


@pytest.fixture
def api():
    return APIClient()


def ask_code(api, phone, purpose, django_capture_on_commit_callbacks):
    with (
        mock.patch("secrets.randbelow", return_value=THE_CODE),
        django_capture_on_commit_callbacks(execute=True),
    ):
        return api.post(
            "/api/v1/auth/sms-codes", {"phone": phone, "purpose": purpose}, format="json"
        )


def reset(api, phone):
    body = {"phone": phone, "code": f"{THE_CODE:06d}", "new_password": NEW_PASSWORD}
    return api.post("/api/v1/auth/password-reset", body, format="json")


def test_a_reset_code_for_a_staff_phone_is_never_sent_and_cannot_reset(
    api, staff, sms_outbox, django_capture_on_commit_callbacks
):
    # The attack: ask a reset code for the superuser's phone, then reset with it
    asked = ask_code(api, STAFF_PHONE, "password_reset", django_capture_on_commit_callbacks)
    response = reset(api, STAFF_PHONE)

    # Answered as for an unknown phone, with nothing sent and nothing changed
    unknown_asked = ask_code(
        api, UNKNOWN_PHONE, "password_reset", django_capture_on_commit_callbacks
    )
    unknown = reset(api, UNKNOWN_PHONE)
    assert (asked.status_code, asked.content) == (unknown_asked.status_code, unknown_asked.content)
    assert (response.status_code, response.content) == (unknown.status_code, unknown.content)
    assert response.json()["error"]["code"] == "invalid_code"
    assert sms_outbox == []
    staff.refresh_from_db()
    assert staff.check_password(PASSWORD)


def test_a_signup_code_for_a_staff_phone_is_never_sent(
    api, staff, sms_outbox, django_capture_on_commit_callbacks
):
    asked = ask_code(api, STAFF_PHONE, "signup", django_capture_on_commit_callbacks)
    body = {"phone": STAFF_PHONE, "code": f"{THE_CODE:06d}", "password": NEW_PASSWORD}
    response = api.post("/api/v1/auth/signup", body, format="json")

    assert asked.status_code == 202
    assert sms_outbox == []
    assert response.json()["error"]["code"] == "invalid_code"
    assert User.objects.get().check_password(PASSWORD)


def test_the_app_login_answers_a_staff_phone_as_a_wrong_password(api, staff):
    staff_login = api.post(
        "/api/v1/auth/token", {"phone": STAFF_PHONE, "password": PASSWORD}, format="json"
    )
    wrong = api.post(
        "/api/v1/auth/token", {"phone": STAFF_PHONE, "password": "not it"}, format="json"
    )

    assert staff_login.status_code == 401
    assert staff_login.content == wrong.content


def test_a_token_a_staff_member_got_before_opens_no_customer_endpoint(api, staff):
    # Tokens minted before this rule, or by a customer later made staff
    tokens = tokens_for(staff)

    api.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['access']}")
    me = api.get("/api/v1/me")
    refreshed = APIClient().post(
        "/api/v1/auth/token/refresh", {"refresh": tokens["refresh"]}, format="json"
    )

    assert me.status_code in (401, 403)
    assert refreshed.status_code == 401
