"""Reward items, and customers signed up through the API as a customer app does it."""

import re
from decimal import Decimal

import factory
from django.test import TestCase
from rest_framework.test import APIClient

from accounts.sms import backends as sms_backends
from catalog.models import RewardItem

SMS_CODE = re.compile(r"\b[0-9]{6}\b")
PASSWORD = "a long passphrase 2026"


class RewardItemFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = RewardItem

    name = factory.Sequence(lambda n: f"Reward {n}")
    description = "A reward"
    points = 500
    cash_price = Decimal("0.00")
    stock = None


def customer_client(phone: str) -> APIClient:
    """Sign up with an SMS code through the API; returns a client holding the access token."""
    api = APIClient()
    # The text is sent on commit; the test's transaction never commits.
    with TestCase.captureOnCommitCallbacks(execute=True):
        response = api.post(
            "/api/v1/auth/sms-codes", {"phone": phone, "purpose": "signup"}, format="json"
        )
    assert response.status_code == 202, response.content
    code = SMS_CODE.search(sms_backends.outbox[-1]["body"]).group()
    response = api.post(
        "/api/v1/auth/signup", {"phone": phone, "code": code, "password": PASSWORD}, format="json"
    )
    assert response.status_code == 201, response.content
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {response.json()['access']}")
    return api
