import os
from io import StringIO
from unittest import mock

import pytest
from django.contrib.auth import authenticate
from django.core.management import CommandError, call_command

from accounts.models import User
from accounts.phones import InvalidPhone, normalize_phone
from tests.staff_otp import app_code, authenticator_app

pytestmark = pytest.mark.django_db


def test_a_user_logs_in_with_the_phone_in_any_format_it_was_stored_in_e164():
    user = User.objects.create_user(phone="138 0013 8000", password="long-enough-secret")

    assert user.phone == "+8613800138000"
    assert authenticate(username="13800138000", password="long-enough-secret") == user
    assert authenticate(username="+86 138-0013-8000", password="long-enough-secret") == user
    assert authenticate(username="not a phone", password="long-enough-secret") is None


def test_passwords_are_hashed_with_argon2():
    user = User.objects.create_user(phone="+8613800138000", password="long-enough-secret")

    assert user.password.startswith("argon2")


def test_createsuperuser_works_non_interactively_from_the_environment():
    env = {
        "DJANGO_SUPERUSER_PHONE": "13900000001",
        "DJANGO_SUPERUSER_PASSWORD": "staff-secret-2026",
    }
    with mock.patch.dict(os.environ, env):
        call_command("createsuperuser", interactive=False, stdout=StringIO())

    admin = User.objects.get()
    assert admin.phone == "+8613900000001"
    assert admin.is_staff and admin.is_superuser
    assert admin.check_password("staff-secret-2026")


def test_createsuperuser_refuses_an_invalid_phone():
    env = {"DJANGO_SUPERUSER_PHONE": "12345", "DJANGO_SUPERUSER_PASSWORD": "staff-secret-2026"}
    with mock.patch.dict(os.environ, env), pytest.raises(CommandError, match="valid mobile"):
        call_command("createsuperuser", interactive=False, stdout=StringIO(), stderr=StringIO())

    assert not User.objects.exists()


def test_staff_log_in_to_admin_with_the_phone(client):
    staff = User.objects.create_superuser(phone="+8613900000001", password="staff-secret-2026")
    app = authenticator_app(staff)

    response = client.post(
        "/admin/login/?next=/admin/",
        {"username": "13900000001", "password": "staff-secret-2026"},
    )
    client.post("/admin/two-factor/verify/", {"code": app_code(app)})

    assert response.status_code == 302
    assert client.get("/admin/loyalty/member/").status_code == 200


@pytest.mark.parametrize(
    "raw", ["010-65529988", "13800138000x", "13800138000 ext 5", "+86 10 6552 9988", "138001380"]
)
def test_only_mobile_numbers_without_extension_are_phones(raw):
    with pytest.raises(InvalidPhone):
        normalize_phone(raw)
