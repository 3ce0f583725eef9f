"""A signed-up customer and their app, for the tests of the customer's endpoints."""

from rest_framework.test import APIClient

from accounts.models import User
from accounts.services import tokens_for
from loyalty.models import EventRule
from loyalty.services.members import member_link_user

PHONE = "+8613800138000"


def customer_signed_up(phone: str = PHONE) -> User:
    user = User.objects.create_user(phone=phone, password="a long passphrase 2026")
    member_link_user(user=user)
    return user


def app(user, **headers) -> APIClient:
    """The customer's app with an access token minted now: tokens live 15 minutes, and
    the tests that use it travel days."""
    client = APIClient(**headers)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens_for(user)['access']}")
    return client


def built_in_rule_on(event_type: str) -> EventRule:
    """One of the program's own event rules, as the migration made it, switched on."""
    rule = EventRule.objects.get(event_type=event_type)
    rule.is_active = True
    rule.save(update_fields=["is_active"])
    return rule
