"""Sign-up, reset and login do the same work whatever the phone, so their timing does
not tell which phones are registered: the same SQL statements in the same order,
and the same tasks. (The attack timed reset-code requests: unknown phones skipped two
inserts and a task. `bench/auth_timing.py` prints the medians of the timings.)"""

import re
from unittest import mock

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from accounts.models import User

pytestmark = pytest.mark.django_db

CUSTOMER = "+8613800138000"
UNKNOWN = "+8613900139000"
STAFF = "+8613700137000"
PASSWORD = "a long passphrase 2026"
# Values, and the savepoints' running names.
LITERALS = re.compile(r"'(?:[^']|'')*'|\"s\d+_x\d+\"|\b\d+\b")


@pytest.fixture(autouse=True)
def _accounts(settings, db):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    User.objects.create_user(phone=CUSTOMER, password=PASSWORD)
    User.objects.create_user(phone=STAFF, password=PASSWORD, is_staff=True)


def ask_code(phone, purpose, capture):
    with mock.patch("secrets.randbelow", return_value=123456), capture(execute=True):
        APIClient().post(
            "/api/v1/auth/sms-codes", {"phone": phone, "purpose": purpose}, format="json"
        )


def post(path, body):
    return APIClient().post(path, body, format="json")


def code_request(purpose):
    return lambda phone: post("/api/v1/auth/sms-codes", {"phone": phone, "purpose": purpose})


def signup_with_a_wrong_code(phone):
    body = {"phone": phone, "code": "654321", "password": "another passphrase 2026"}
    return post("/api/v1/auth/signup", body)


def reset_with_a_wrong_code(phone):
    body = {"phone": phone, "code": "654321", "new_password": "another passphrase 2026"}
    return post("/api/v1/auth/password-reset", body)


def login_with_a_wrong_password(phone):
    return post("/api/v1/auth/token", {"phone": phone, "password": "not it"})


def work(attempt, phone, capture) -> tuple[int, bytes, list[str], int]:
    """The answer, the SQL statements (values that differ between phones taken out)
    and the number of tasks the attempt queued."""
    with CaptureQueriesContext(connection) as queries, capture(execute=False) as tasks:
        response = attempt(phone)
    sql = [LITERALS.sub("?", query["sql"]) for query in queries.captured_queries]
    return response.status_code, response.content, sql, len(tasks)


@pytest.mark.parametrize(
    ("code_first", "attempt"),
    [
        pytest.param(None, code_request("signup"), id="sign-up code"),
        pytest.param(None, code_request("password_reset"), id="reset code"),
        pytest.param("signup", signup_with_a_wrong_code, id="sign-up"),
        pytest.param("password_reset", reset_with_a_wrong_code, id="reset"),
        pytest.param(None, login_with_a_wrong_password, id="login"),
    ],
)
def test_a_customer_an_unknown_and_a_staff_phone_cost_the_same_work(
    code_first, attempt, django_capture_on_commit_callbacks
):
    phones = (CUSTOMER, UNKNOWN, STAFF)
    if code_first:
        for phone in phones:
            ask_code(phone, code_first, django_capture_on_commit_callbacks)

    customer, unknown, staff = (
        work(attempt, phone, django_capture_on_commit_callbacks) for phone in phones
    )

    assert customer == unknown == staff
    assert customer[2], "the attempt reached the database"
