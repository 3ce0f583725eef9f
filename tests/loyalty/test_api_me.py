"""GET /api/v1/me and /me/transactions: the customer's own balance, expiring points
and ledger, with points earned in store before sign-up; keyset pages that hold
still while new entries arrive; and a token that sees only its own member."""

import base64
import re
from datetime import datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine
from rest_framework.test import APIClient

from accounts.models import User
from loyalty.models import EarningRule, LedgerEntry, Member, Program, Purchase
from loyalty.services.refunds import refund_record
from tests.factories import earn
from tests.invariants import assert_ledger_consistent

pytestmark = pytest.mark.django_db

PHONE = "+8613800138000"
OTHER_PHONE = "+8613900139000"
PASSWORD = "a long passphrase 2026"
SHANGHAI = ZoneInfo("Asia/Shanghai")
ME_URL = "/api/v1/me"
TRANSACTIONS_URL = "/api/v1/me/transactions"
CODE = re.compile(r"\b[0-9]{6}\b")


def at(*args):
    """Freeze the clock at a wall-clock time in the merchant's zone."""
    return time_machine.travel(datetime(*args, tzinfo=SHANGHAI), tick=False)


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # Argon2 takes a tenth of a second a hash by design; these tests are about the API.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def sign_up(django_capture_on_commit_callbacks, sms_outbox):
    """Sign up through the API as a customer app does; returns a client holding
    the customer's access token."""

    def sign_up(phone=PHONE):
        api = APIClient()
        with django_capture_on_commit_callbacks(execute=True):
            response = api.post(
                "/api/v1/auth/sms-codes", {"phone": phone, "purpose": "signup"}, format="json"
            )
        assert response.status_code == 202
        code = CODE.search(sms_outbox[-1]["body"]).group()
        response = api.post(
            "/api/v1/auth/signup",
            {"phone": phone, "code": code, "password": PASSWORD},
            format="json",
        )
        assert response.status_code == 201, response.json()
        api.credentials(HTTP_AUTHORIZATION=f"Bearer {response.json()['access']}")
        return api

    return sign_up


def entry_ids(phone):
    return list(
        LedgerEntry.objects.filter(member__phone=phone).order_by("-id").values_list("id", flat=True)
    )


def error_code(response):
    return response.json()["error"]["code"]


# --- Me ----------------------------------------------------------------------------


def test_signing_up_links_the_points_earned_in_store(store, sign_up):
    # Given 100 points earned in store on 6 July 2026, before the customer had an account
    with at(2026, 7, 6, 10, 0):
        earn(store=store, phone=PHONE, amount="100.00", order_id="POS-1")

        # When the customer signs up with the same phone
        customer = sign_up(PHONE)
        response = customer.get(ME_URL)

        # Then the points are there at once, on the very member the store created
        assert response.status_code == 200
        assert response.json() == {
            "phone": PHONE,
            "balance": 100,
            "expiring": [{"points": 100, "expires_at": "2027-08-01T00:00:00+08:00"}],
            "promotions": [],
        }
        assert Member.objects.get().user == User.objects.get(phone=PHONE)
        [entry] = customer.get(TRANSACTIONS_URL).json()["results"]
        assert (entry["kind"], entry["points"], entry["reference"]) == ("earn", 100, "POS-1")

        # And points earned after sign-up land on the same account
        earn(store=store, phone=PHONE, amount="50.00")
        assert customer.get(ME_URL).json()["balance"] == 150
    assert Member.objects.count() == 1


def test_a_customer_who_never_bought_sees_an_empty_account(sign_up):
    customer = sign_up(PHONE)

    assert customer.get(ME_URL).json() == {
        "phone": PHONE,
        "balance": 0,
        "expiring": [],
        "promotions": [],
    }
    assert customer.get(TRANSACTIONS_URL).json() == {"results": [], "next": None}


def promotion(name_en, name_zh, **fields):
    return EarningRule.objects.create(
        name_en=name_en,
        name_zh=name_zh,
        **{"kind": "multiplier", "multiplier": Decimal("2"), **fields},
    )


def test_the_customer_sees_the_promotions_running_now_and_within_a_week(sign_up):
    with at(2026, 7, 6, 10, 0):
        now = datetime(2026, 7, 6, 10, 0, tzinfo=SHANGHAI)
        promotion(
            "Double on weekends",
            "周末双倍",
            days=[7, 6],
            ends_at=datetime(2026, 8, 1, tzinfo=SHANGHAI),
        )
        promotion(
            "Morning bonus",
            "早间赠分",
            kind="bonus",
            multiplier=None,
            bonus_points=50,
            starts_at=now + timedelta(days=3),
            hours_from=time(7),
            hours_until=time(10),
        )
        promotion("Next month", "下月", starts_at=now + timedelta(days=8))
        promotion("Ended", "已结束", ends_at=now)
        promotion("Off", "已关闭", is_active=False)
        EarningRule.objects.create(
            name_en="No tobacco", name_zh="烟草不积分", kind="exclusion", categories=["tobacco"]
        )
        customer = sign_up(PHONE)

        english = customer.get(ME_URL).json()["promotions"]
        chinese = customer.get(ME_URL, headers={"Accept-Language": "zh-hans"}).json()

    assert english == [
        {
            "name": "Double on weekends",
            "kind": "multiplier",
            "multiplier": "2.00",
            "bonus_points": None,
            "starts_at": None,
            "ends_at": "2026-08-01T00:00:00+08:00",
            "days": [6, 7],
            "hours_from": None,
            "hours_until": None,
        },
        {
            "name": "Morning bonus",
            "kind": "bonus",
            "multiplier": None,
            "bonus_points": 50,
            "starts_at": "2026-07-09T10:00:00+08:00",
            "ends_at": None,
            "days": [],
            "hours_from": "07:00",
            "hours_until": "10:00",
        },
    ]
    assert [row["name"] for row in chinese["promotions"]] == ["周末双倍", "早间赠分"]


def test_expiring_points_are_summed_per_expiry_date_soonest_first(store, sign_up):
    # Given points that expire at the end of the 30th day after they were earned
    Program.objects.update_or_create(pk=Program.SINGLETON_ID, defaults={"expiry_policy": "days:30"})
    with at(2026, 7, 7, 8, 0):
        earn(store=store, phone=PHONE, amount="5.00", order_id="DAY-2")
    with at(2026, 7, 6, 9, 0):
        earn(store=store, phone=PHONE, amount="10.00", order_id="DAY-1-MORNING")
    with at(2026, 7, 6, 23, 30):
        earn(store=store, phone=PHONE, amount="20.00", order_id="DAY-1-NIGHT")
        # and half of the night's order refunded
        refund_record(store=store, order_id="DAY-1-NIGHT", refund_id="R-1", amount=Decimal("10.00"))
    # and points earned under a policy where they never expire
    Program.objects.filter(pk=Program.SINGLETON_ID).update(expiry_policy="never")
    with at(2026, 7, 8, 12, 0):
        earn(store=store, phone=PHONE, amount="7.00", order_id="FOREVER")

    with at(2026, 7, 9, 12, 0):
        response = sign_up(PHONE).get(ME_URL)

    # Then both purchases of 6 July are one line, what is left of them, and the
    # points that never expire count in the balance but not in the list
    assert response.json() == {
        "phone": PHONE,
        "balance": 32,
        "expiring": [
            {"points": 20, "expires_at": "2026-08-06T00:00:00+08:00"},
            {"points": 5, "expires_at": "2026-08-07T00:00:00+08:00"},
        ],
        "promotions": [],
    }
    assert_ledger_consistent()


# --- Transactions --------------------------------------------------------------------


def test_transactions_are_listed_newest_first_with_their_fields(store, sign_up):
    with at(2026, 7, 6, 10, 0):
        earn(store=store, phone=PHONE, amount="100.00", order_id="POS-1")
    with at(2026, 7, 8, 15, 30):
        refund_record(store=store, order_id="POS-1", refund_id="R-1", amount=Decimal("30.00"))
    customer = sign_up(PHONE)

    response = customer.get(TRANSACTIONS_URL)

    assert response.status_code == 200
    newest, oldest = entry_ids(PHONE)
    assert response.json() == {
        "results": [
            {
                "id": newest,
                "kind": "earn_reversal",
                "points": -30,
                "balance_after": 70,
                "created_at": "2026-07-08T15:30:00+08:00",
                "reference": "POS-1/R-1",
                "description": "Taken back for refund POS-1/R-1 at Web shop",
            },
            {
                "id": oldest,
                "kind": "earn",
                "points": 100,
                "balance_after": 100,
                "created_at": "2026-07-06T10:00:00+08:00",
                "reference": "POS-1",
                "description": "Earned on order POS-1 at Web shop",
            },
        ],
        "next": None,
    }


def test_pages_of_50_hold_still_while_new_entries_arrive(store, sign_up):
    # Given 60 entries of the customer, interleaved with another member's entries
    for n in range(60):
        earn(store=store, phone=PHONE, amount=f"{n + 1}.00")
        if n % 7 == 0:
            earn(store=store, phone=OTHER_PHONE, amount="1.00")
    customer = sign_up(PHONE)
    before = entry_ids(PHONE)

    # When the customer reads the first page
    first = customer.get(TRANSACTIONS_URL).json()

    # Then it holds the 50 newest entries, newest first
    assert [row["id"] for row in first["results"]] == before[:50]
    assert first["next"]

    # When three purchases arrive before the customer scrolls on
    for n in range(3):
        earn(store=store, phone=PHONE, amount="1.00", order_id=f"NEW-{n}")
    second = customer.get(first["next"]).json()

    # Then the next page goes on exactly where the first stopped: nothing twice, nothing lost
    assert [row["id"] for row in second["results"]] == before[50:]
    assert second["next"] is None
    # And a fresh first page starts with the new entries
    fresh = customer.get(TRANSACTIONS_URL).json()
    assert [row["reference"] for row in fresh["results"][:3]] == ["NEW-2", "NEW-1", "NEW-0"]
    assert [row["id"] for row in fresh["results"][3:]] == before[:47]


def test_a_page_size_cannot_be_chosen_by_the_caller(store, sign_up):
    for _ in range(55):
        earn(store=store, phone=PHONE, amount="1.00")
    customer = sign_up(PHONE)

    response = customer.get(TRANSACTIONS_URL, {"page_size": 1000, "limit": 1000})

    assert len(response.json()["results"]) == 50


@pytest.mark.parametrize(
    "cursor",
    [
        pytest.param("garbage", id="garbage"),
        pytest.param("curseur-é", id="not-ascii"),
        pytest.param(base64.b64encode(b"o=-5").decode(), id="negative-offset"),
        pytest.param(base64.b64encode(b"r=yes").decode(), id="bad-reverse-flag"),
        pytest.param(base64.b64encode(b"p=not-an-id").decode(), id="position-not-an-id"),
        pytest.param(base64.b64encode(b"p=" + b"9" * 30).decode(), id="position-beyond-ids"),
        pytest.param(base64.b64encode(b"r=1&p=5").decode(), id="backward-cursor"),
        pytest.param(base64.b64encode(b"o=3&p=5").decode(), id="offset-cursor"),
    ],
)
def test_a_bad_cursor_is_a_validation_error(sign_up, cursor):
    customer = sign_up(PHONE)

    response = customer.get(TRANSACTIONS_URL, {"cursor": cursor})

    assert response.status_code == 400
    assert error_code(response) == "validation_error"


@pytest.mark.parametrize("url", [TRANSACTIONS_URL, "/api/v1/me/reward-orders"])
@pytest.mark.parametrize(
    "position",
    [
        # The attacker's "²": str.isdigit() accepts it, int() refuses it.
        pytest.param("%C2%B2", id="superscript-two"),
        # int() takes these as 3 and 5; no id is written so.
        pytest.param("%D9%A3", id="arabic-indic-three"),
        pytest.param("%EF%BC%95", id="fullwidth-five"),
    ],
)
def test_a_cursor_positioned_on_digits_other_than_0_to_9_is_a_validation_error(
    sign_up, url, position
):
    # Given a customer, and a cursor forged with such a position
    customer = sign_up(PHONE)
    cursor = base64.b64encode(f"p={position}".encode()).decode()

    # When the customer's app pages with it
    response = customer.get(url, {"cursor": cursor})

    # Then it is refused in the error shape, never a 500
    assert response.status_code == 400
    assert error_code(response) == "validation_error"
    assert response.json()["error"]["details"] == {"cursor": ["invalid"]}


# --- Whose data, and who may ask ----------------------------------------------------


def test_a_customer_sees_only_their_own_member(store, sign_up):
    # Given two customers with points earned in store
    earn(store=store, phone=PHONE, amount="100.00", order_id="A-1")
    earn(store=store, phone=OTHER_PHONE, amount="300.00", order_id="B-1")
    earn(store=store, phone=OTHER_PHONE, amount="20.00", order_id="B-2")
    customer_a = sign_up(PHONE)
    customer_b = sign_up(OTHER_PHONE)

    # Then each token shows its own phone, balance and entries, and nothing of the other's
    me_a = customer_a.get(ME_URL).json()
    me_b = customer_b.get(ME_URL).json()
    assert (me_a["phone"], me_a["balance"]) == (PHONE, 100)
    assert (me_b["phone"], me_b["balance"]) == (OTHER_PHONE, 320)
    history_a = customer_a.get(TRANSACTIONS_URL).json()["results"]
    history_b = customer_b.get(TRANSACTIONS_URL).json()["results"]
    assert [row["id"] for row in history_a] == entry_ids(PHONE)
    assert [row["id"] for row in history_b] == entry_ids(OTHER_PHONE)
    assert [row["reference"] for row in history_a] == ["A-1"]


@pytest.mark.parametrize("url", [ME_URL, TRANSACTIONS_URL])
def test_customer_endpoints_need_a_customer_token(store_client, url):
    nobody = APIClient()
    forged = APIClient()
    forged.credentials(HTTP_AUTHORIZATION="Bearer not.a.token")

    for client in (nobody, forged):
        response = client.get(url)
        assert response.status_code == 401
        assert error_code(response) == "not_authenticated"

    # A store's key is the merchant's server, not a customer
    response = store_client.get(url)
    assert response.status_code in (401, 403)
    assert "results" not in response.json() and "balance" not in response.json()


def test_a_customer_token_does_not_open_storefront_endpoints(store, sign_up):
    earn(store=store, phone=OTHER_PHONE, amount="100.00")
    customer = sign_up(PHONE)

    purchase = customer.post(
        "/api/v1/purchases",
        {"phone": PHONE, "order_id": "SELF-SERVED", "amount": "999.00"},
        format="json",
    )
    lookup = customer.post("/api/v1/members/lookup", {"phone": OTHER_PHONE}, format="json")
    refund = customer.post(
        "/api/v1/purchases/SELF-SERVED/refunds", {"refund_id": "R", "amount": "1.00"}, format="json"
    )

    for response in (purchase, lookup, refund):
        assert response.status_code in (401, 403)
        assert "balance" not in response.content.decode()
    assert not Purchase.objects.filter(order_id="SELF-SERVED").exists()
    assert customer.get(ME_URL).json()["balance"] == 0
