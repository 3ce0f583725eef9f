"""POST /api/v1/members/lookup: a clerk sees the balance and when points expire."""

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
import time_machine

from accounts.models import User
from loyalty.models import Member, Program
from tests.invariants import assert_ledger_consistent

URL = "/api/v1/members/lookup"
PHONE = "+8613800138000"
SHANGHAI = ZoneInfo("Asia/Shanghai")


def at(*args):
    """Freeze the clock at a wall-clock time in the merchant's zone."""
    return time_machine.travel(datetime(*args, tzinfo=SHANGHAI), tick=False)


def buy(client, *, order_id, amount, phone=PHONE):
    response = client.post(
        "/api/v1/purchases",
        {"phone": phone, "order_id": order_id, "amount": amount},
        format="json",
    )
    assert response.status_code == 201, response.json()


def lookup(client, phone=PHONE):
    return client.post(URL, {"phone": phone}, format="json")


def test_lookup_shows_balance_expiry_and_registration(store_client):
    # Given a member who earned 300 points on 2026-07-06 under the default policy months:12
    with at(2026, 7, 6, 10, 0):
        buy(store_client, order_id="POS-1", amount="300.00")

        # When a clerk looks the member up by the national number
        response = lookup(store_client, "13800138000")

    # Then the points expire at the start of August 2027, Shanghai time
    assert response.status_code == 200
    assert response.json() == {
        "phone": PHONE,
        "balance": 300,
        "expiring": [{"points": 300, "expires_at": "2027-08-01T00:00:00+08:00"}],
        "registered": False,
    }
    assert_ledger_consistent()


def test_expiring_points_are_summed_per_expiry_instant_soonest_first(store_client):
    # Given purchases on two days of July and one in August
    with at(2026, 8, 2, 9, 0):
        buy(store_client, order_id="POS-3", amount="20.00")
    with at(2026, 7, 6, 10, 0):
        buy(store_client, order_id="POS-1", amount="100.00")
    with at(2026, 7, 31, 23, 59):
        buy(store_client, order_id="POS-2", amount="50.00")

    # When the member is looked up
    with at(2026, 8, 3, 12, 0):
        response = lookup(store_client)

    # Then July's points are one line and August's another, the soonest first
    assert response.json()["balance"] == 170
    assert response.json()["expiring"] == [
        {"points": 150, "expires_at": "2027-08-01T00:00:00+08:00"},
        {"points": 20, "expires_at": "2027-09-01T00:00:00+08:00"},
    ]
    assert_ledger_consistent()


def test_the_earning_day_is_the_merchants_day_not_utcs(store_client):
    # Given a purchase at 00:30 on 1 August in Shanghai, still 31 July in UTC
    with time_machine.travel(datetime(2026, 7, 31, 16, 30, tzinfo=UTC), tick=False):
        buy(store_client, order_id="POS-1", amount="10.00")

    # When the member is looked up
    response = lookup(store_client)

    # Then the points count as earned in August
    assert response.json()["expiring"] == [
        {"points": 10, "expires_at": "2027-09-01T00:00:00+08:00"}
    ]


def test_expiring_shows_what_is_left_after_a_refund(store_client):
    # Given 100 points earned, of which a refund took back 30
    with at(2026, 7, 6, 10, 0):
        buy(store_client, order_id="POS-1", amount="100.00")
        store_client.post(
            "/api/v1/purchases/POS-1/refunds",
            {"refund_id": "R-1", "amount": "30.00"},
            format="json",
        )

    # When the member is looked up
    response = lookup(store_client)

    # Then 70 points remain, all expiring together
    assert response.json()["balance"] == 70
    assert response.json()["expiring"] == [
        {"points": 70, "expires_at": "2027-08-01T00:00:00+08:00"}
    ]
    assert_ledger_consistent()


def test_points_that_never_expire_count_in_the_balance_but_are_not_listed(store_client):
    # Given 40 points earned under months:12, then staff switch to never and 60 more are earned
    with at(2026, 7, 6, 10, 0):
        buy(store_client, order_id="POS-1", amount="40.00")
    program = Program.current()
    program.expiry_policy = "never"
    program.save()
    with at(2026, 7, 7, 10, 0):
        buy(store_client, order_id="POS-2", amount="60.00")

    # When the member is looked up
    response = lookup(store_client)

    # Then the balance has all 100, and only the 40 with a date are listed as expiring
    assert response.json()["balance"] == 100
    assert response.json()["expiring"] == [
        {"points": 40, "expires_at": "2027-08-01T00:00:00+08:00"}
    ]
    assert_ledger_consistent()


def test_a_member_with_no_points_is_found_with_a_zero_balance(store_client):
    # Given a member whose only purchase earned nothing
    buy(store_client, order_id="POS-1", amount="0.99")

    # When the member is looked up
    response = lookup(store_client)

    # Then the member is there with 0 points and nothing expiring
    assert response.status_code == 200
    assert response.json() == {
        "phone": PHONE,
        "balance": 0,
        "expiring": [],
        "registered": False,
    }


def test_a_member_who_signed_up_is_registered(store_client):
    # Given a member whose phone has signed up in the app
    buy(store_client, order_id="POS-1", amount="10.00")
    member = Member.objects.get()
    member.user = User.objects.create_user(PHONE)
    member.save()

    # When the member is looked up
    response = lookup(store_client)

    # Then the clerk sees the member is registered
    assert response.json()["registered"] is True
    assert response.json()["balance"] == 10


def test_any_store_sees_every_member(store_client, other_store_client):
    # Given a member who only ever bought at one store
    buy(store_client, order_id="POS-1", amount="25.00")

    # When another store looks the member up
    response = lookup(other_store_client)

    # Then it sees the same account
    assert response.status_code == 200
    assert response.json()["balance"] == 25


@pytest.mark.parametrize("phone", [PHONE, "13800138000", "+86 138-0013-8000"])
def test_an_unknown_phone_is_not_found_and_no_member_is_created(store_client, phone):
    # Given a program with another member only
    buy(store_client, order_id="POS-1", amount="10.00", phone="+8613900139000")

    # When a clerk looks up a phone that never bought
    response = lookup(store_client, phone)

    # Then it is a 404 in the error shape and looking up created nothing
    assert response.status_code == 404
    assert response.json() == {
        "error": {
            "code": "not_found",
            "message": response.json()["error"]["message"],
            "details": {},
        }
    }
    assert response.json()["error"]["message"]
    assert list(Member.objects.values_list("phone", flat=True)) == ["+8613900139000"]
