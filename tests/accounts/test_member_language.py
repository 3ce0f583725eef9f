"""Texts reach customers in their language: the member keeps the language of the
request that first identified them (a code request, then the sign-up, which proves
the phone is theirs), the customer may change it, and every text to them is written
in it, whatever language the worker runs in; without one, the shop's LANGUAGE_CODE."""

import re

import pytest
from django.core.cache import cache
from django.utils import translation
from rest_framework.test import APIClient

from accounts.api.views import requested_language
from loyalty.models import Member
from tests.factories import earn

pytestmark = pytest.mark.django_db

PHONE = "+8613800138000"
PASSWORD = "a long passphrase 2026"
CODE = re.compile(r"\b[0-9]{6}\b")
CHINESE_SIGNUP_TEXT = re.compile(r"^您的注册验证码是 [0-9]{6}")
ENGLISH_RESET_TEXT = re.compile(r"^Your password reset code is [0-9]{6}")
CHINESE_RESET_TEXT = re.compile(r"^您的重置密码验证码是 [0-9]{6}")


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def ask_code(django_capture_on_commit_callbacks, sms_outbox):
    """Ask for a code as an app does, its task run in the worker's own language
    (English); returns the text the phone got."""

    def ask_code(purpose, **headers):
        cache.clear()  # the cap of one code a minute is not what these tests are about
        with django_capture_on_commit_callbacks(execute=True), translation.override("en"):
            response = APIClient().post(
                "/api/v1/auth/sms-codes",
                {"phone": PHONE, "purpose": purpose},
                format="json",
                **headers,
            )
        assert response.status_code == 202, response.content
        return sms_outbox[-1]["body"]

    return ask_code


def sign_up(ask_code, **headers) -> APIClient:
    code = CODE.search(ask_code("signup", **headers)).group()
    api = APIClient()
    response = api.post(
        "/api/v1/auth/signup",
        {"phone": PHONE, "code": code, "password": PASSWORD},
        format="json",
        **headers,
    )
    assert response.status_code == 201, response.content
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {response.json()['access']}")
    return api


def member_language() -> str:
    return Member.objects.get(phone=PHONE).language


def test_the_sign_up_language_is_kept_and_later_texts_use_it(ask_code):
    sign_up(ask_code, HTTP_ACCEPT_LANGUAGE="zh-CN,zh;q=0.9")

    assert member_language() == "zh-hans"
    assert CHINESE_RESET_TEXT.match(ask_code("password_reset", HTTP_ACCEPT_LANGUAGE="en"))


def test_a_code_request_names_the_language_of_a_member_who_bought_in_store(store, ask_code):
    earn(store=store, phone=PHONE, amount="100.00")

    assert CHINESE_SIGNUP_TEXT.match(ask_code("signup", HTTP_ACCEPT_LANGUAGE="zh-Hans"))
    assert member_language() == "zh-hans"


def test_the_sign_up_decides_over_a_code_request_anyone_could_have_made(store, ask_code):
    earn(store=store, phone=PHONE, amount="100.00")
    ask_code("signup", HTTP_ACCEPT_LANGUAGE="zh-Hans")

    sign_up(ask_code, HTTP_ACCEPT_LANGUAGE="en-GB")

    assert member_language() == "en"


def test_a_language_we_do_not_speak_is_nobodys_choice(store, ask_code, settings):
    settings.LANGUAGE_CODE = "zh-hans"
    earn(store=store, phone=PHONE, amount="100.00")

    assert CHINESE_SIGNUP_TEXT.match(ask_code("signup", HTTP_ACCEPT_LANGUAGE="fr-FR"))
    assert member_language() == ""


def test_without_a_language_texts_follow_the_shops_default(ask_code, settings):
    settings.LANGUAGE_CODE = "zh-hans"
    sign_up(ask_code)

    assert member_language() == ""
    assert CHINESE_RESET_TEXT.match(ask_code("password_reset"))


def test_the_customer_changes_the_language_of_their_texts(ask_code):
    customer = sign_up(ask_code, HTTP_ACCEPT_LANGUAGE="zh-CN")

    response = customer.patch("/api/v1/me/profile", {"language": "en"}, format="json")

    assert response.status_code == 200
    assert response.json()["language"] == "en"
    assert customer.get("/api/v1/me/profile").json()["language"] == "en"
    assert ENGLISH_RESET_TEXT.match(ask_code("password_reset", HTTP_ACCEPT_LANGUAGE="zh-CN"))


@pytest.mark.parametrize("language", ["fr", "zh", "", None, 7, ["en"]])
def test_a_language_not_on_offer_is_refused_and_changes_nothing(ask_code, language):
    customer = sign_up(ask_code, HTTP_ACCEPT_LANGUAGE="zh-CN")

    response = customer.patch("/api/v1/me/profile", {"language": language}, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_error"
    assert "language" in response.json()["error"]["details"]
    assert member_language() == "zh-hans"


def test_a_profile_patch_without_fields_changes_nothing(ask_code):
    customer = sign_up(ask_code, HTTP_ACCEPT_LANGUAGE="zh-CN")

    response = customer.patch("/api/v1/me/profile", {}, format="json")

    assert response.json()["language"] == "zh-hans"


@pytest.mark.parametrize(
    ("header", "chosen"),
    [
        ("zh-CN,zh;q=0.9,en;q=0.8", "zh-hans"),
        ("en-US", "en"),
        ("fr-CA, fr;q=0.9", ""),
        ("", ""),
        (";;,,q=1", ""),
    ],
)
def test_the_requested_language_is_one_the_header_named(rf, header, chosen):
    request = rf.get("/", HTTP_ACCEPT_LANGUAGE=header)
    with translation.override(translation.get_language_from_request(request)):
        assert requested_language(request) == chosen
