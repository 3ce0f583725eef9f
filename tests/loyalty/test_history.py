"""The customer's history in words: each transaction of GET /api/v1/me/transactions
says what happened and where, in the member's language, and never shows the note a
staff member wrote with an adjustment."""

from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.utils import timezone

from catalog.services import reward_order_cancel, reward_order_place
from loyalty.models import Member
from loyalty.services.adjustments import adjustment_request
from loyalty.services.expiry_job import points_expire
from loyalty.services.redemptions import (
    redemption_cancel,
    redemption_commit,
    redemption_hold,
    redemptions_release_expired,
)
from loyalty.services.refunds import refund_record
from tests.catalog.factories import RewardItemFactory, customer_client
from tests.factories import earn

pytestmark = pytest.mark.django_db

PHONE = "+8613800138000"
TRANSACTIONS_URL = "/api/v1/me/transactions"
SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def descriptions(client, **headers) -> list[str]:
    response = client.get(TRANSACTIONS_URL, **headers)
    assert response.status_code == 200, response.content
    return [row["description"] for row in reversed(response.json()["results"])]


def test_every_kind_of_entry_reads_as_what_happened(store, django_user_model):
    with time_machine.travel(datetime(2026, 1, 5, 10, 0, tzinfo=SHANGHAI), tick=False):
        earn(store=store, phone=PHONE, amount="5000.00", order_id="POS-1")
    customer = customer_client(PHONE)
    member = Member.objects.get(phone=PHONE)
    refund_record(store=store, order_id="POS-1", refund_id="R-1", amount=Decimal("100.00"))
    committed = redemption_hold(
        store=store, member=member, order_id="POS-2", order_total=Decimal("50.00"), points=200
    )
    redemption_commit(store=store, redemption_id=committed.pk)
    cancelled = redemption_hold(
        store=store, member=member, order_id="POS-3", order_total=Decimal("50.00"), points=200
    )
    redemption_cancel(store=store, redemption_id=cancelled.pk)
    redemption_hold(
        store=store, member=member, order_id="POS-4", order_total=Decimal("50.00"), points=200
    )
    redemptions_release_expired(as_of=timezone.now() + timedelta(days=1))
    item = RewardItemFactory(name="Tote bag", points=300)
    order = reward_order_place(member=member, item_id=item.pk, quantity=1)
    reward_order_cancel(order_id=order.pk, member=member)
    clerk = django_user_model.objects.create_superuser(phone="+8613900000009")
    adjustment_request(
        member=member, points=50, reason="goodwill", note="rude cashier, sorry", staff_user=clerk
    )
    a_year_on = datetime(2027, 2, 1, tzinfo=SHANGHAI)
    with time_machine.travel(a_year_on, tick=False):
        points_expire(as_of=a_year_on)

    assert descriptions(customer) == [
        "Earned on order POS-1 at Web shop",
        "Taken back for refund POS-1/R-1 at Web shop",
        "Used for a discount on order POS-2 at Web shop",
        "Used for a discount on order POS-3 at Web shop",
        "Given back: the discount on order POS-3 was cancelled",
        "Used for a discount on order POS-4 at Web shop",
        "Given back: the discount on order POS-4 was not used in time",
        "Spent on a reward: Tote bag",
        f"Given back: reward order {order.code} was cancelled",
        "Adjusted by the shop: goodwill gesture",
        "Expired",
    ]


def test_the_history_is_in_the_language_the_member_chose(store):
    earn(store=store, phone=PHONE, amount="100.00", order_id="POS-1")
    customer = customer_client(PHONE)

    response = customer.patch(
        "/api/v1/me/profile", {"language": "zh-hans"}, format="json", HTTP_ACCEPT_LANGUAGE="en"
    )
    assert response.json()["language"] == "zh-hans"

    assert descriptions(customer, HTTP_ACCEPT_LANGUAGE="en") == [
        "在 Web shop 的订单 POS-1 获得积分"
    ]


def test_a_member_who_chose_none_reads_the_history_in_the_apps_language(store):
    earn(store=store, phone=PHONE, amount="100.00", order_id="POS-1")
    customer = customer_client(PHONE)

    assert descriptions(customer, HTTP_ACCEPT_LANGUAGE="zh-CN") == [
        "在 Web shop 的订单 POS-1 获得积分"
    ]
    assert descriptions(customer, HTTP_ACCEPT_LANGUAGE="en") == [
        "Earned on order POS-1 at Web shop"
    ]
