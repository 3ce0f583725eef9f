"""Points as a discount at checkout, through the storefront API: quote, hold, commit,
cancel; the cap and the rounding at their edges; the release of holds that ran out;
replays; and bad input that changes nothing."""

from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.utils.dateparse import parse_datetime
from rest_framework.test import APIClient

from loyalty.models import (
    Allocation,
    IdempotentRequest,
    LedgerEntry,
    Lot,
    Member,
    Program,
    Redemption,
)
from loyalty.services.expiry_job import points_expire
from loyalty.services.redemptions import redemptions_release_expired
from loyalty.tasks import holds_release
from tests.beat import beat_started_at
from tests.factories import earn
from tests.invariants import assert_ledger_consistent

pytestmark = pytest.mark.django_db

PHONE = "+8613800138000"
SHANGHAI = ZoneInfo("Asia/Shanghai")
QUOTE_URL = "/api/v1/redemptions/quote"
HOLD_URL = "/api/v1/redemptions"
MISSING = object()


def at(*args):
    """Freeze the clock at a wall-clock time in the merchant's zone."""
    return time_machine.travel(datetime(*args, tzinfo=SHANGHAI), tick=False)


def program(**rules):
    Program.objects.update_or_create(pk=Program.SINGLETON_ID, defaults=rules)


def quote(client, order_total, phone=PHONE):
    return client.post(QUOTE_URL, {"phone": phone, "order_total": order_total}, format="json")


def hold_body(points, order_total="100.00", order_id="POS-1", phone=PHONE):
    return {"phone": phone, "order_id": order_id, "order_total": order_total, "points": points}


def hold(client, points, order_total="100.00", order_id="POS-1", **headers):
    return client.post(
        HOLD_URL, hold_body(points, order_total, order_id), format="json", headers=headers
    )


def commit(client, redemption_id):
    return client.post(f"/api/v1/redemptions/{redemption_id}/commit")


def cancel(client, redemption_id):
    return client.post(f"/api/v1/redemptions/{redemption_id}/cancel")


def balance(phone=PHONE):
    return Member.objects.get(phone=phone).balance


def lots(phone=PHONE):
    return list(
        Lot.objects.filter(member__phone=phone)
        .order_by("pk")
        .values_list("points", "remaining", "expires_at")
    )


def kinds(phone=PHONE):
    return list(
        LedgerEntry.objects.filter(member__phone=phone)
        .order_by("pk")
        .values_list("kind", flat=True)
    )


def database_state():
    return {
        "counts": {
            model.__name__: model.objects.count()
            for model in (Member, LedgerEntry, Lot, Allocation, Redemption, IdempotentRequest)
        },
        "balances": list(Member.objects.order_by("pk").values_list("phone", "balance")),
        "lots": list(Lot.objects.order_by("pk").values_list("remaining", flat=True)),
        "redemptions": list(Redemption.objects.order_by("pk").values_list("status", flat=True)),
    }


def assert_refused(response, status: int, code: str):
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert isinstance(body["error"]["details"], dict)
    return body["error"]


# --- Quote, cap and rounding --------------------------------------------------------


def test_a_quote_caps_a_bill_whose_cap_is_not_a_whole_number_of_points(store, store_client):
    # Given 5000 points and the default rules: 100 points = 1.00 off, at most 50% of a bill
    earn(store=store, phone=PHONE, amount="5000.00")

    # When a bill of 33.33 is quoted (its cap is 1666.5 points)
    response = quote(store_client, "33.33")

    # Then the cap rounds down to whole points and the discount down to the cent
    assert response.status_code == 200
    assert response.json() == {
        "balance": 5000,
        "max_points": 1666,
        "max_discount": "16.66",
        "redeem_rate": 100,
        "min_points": 100,
    }


def test_the_exact_cap_is_accepted_and_one_point_over_is_refused(store, store_client):
    earn(store=store, phone=PHONE, amount="5000.00")
    before = database_state()

    over = hold(store_client, 1667, order_total="33.33")

    error = assert_refused(over, 422, "redeem_cap_exceeded")
    assert error["details"] == {"max_points": 1666, "requested": 1667}
    assert database_state() == before

    exact = hold(store_client, 1666, order_total="33.33")

    assert exact.status_code == 201, exact.content
    assert (exact.json()["points"], exact.json()["discount"]) == (1666, "16.66")
    assert exact.json()["member"] == {"phone": PHONE, "balance": 5000 - 1666}
    assert balance() == 5000 - 1666
    assert_ledger_consistent()


def test_with_three_points_a_yuan_the_cap_and_the_discount_round_down(store, store_client):
    # Given 3 points make 1.00 off, and a minimum low enough for a small bill
    program(redeem_rate=3, redeem_min_points=10)
    earn(store=store, phone=PHONE, amount="1000.00")

    # Then a 33.33 bill takes at most floor(49.995) = 49 points, worth floor(16.333) = 16.33
    assert quote(store_client, "33.33").json() == {
        "balance": 1000,
        "max_points": 49,
        "max_discount": "16.33",
        "redeem_rate": 3,
        "min_points": 10,
    }
    assert_refused(hold(store_client, 50, order_total="33.33"), 422, "redeem_cap_exceeded")

    held = hold(store_client, 49, order_total="33.33")

    assert held.status_code == 201, held.content
    assert (held.json()["points"], held.json()["discount"]) == (49, "16.33")
    assert Redemption.objects.get().discount == Decimal("16.33")
    assert_ledger_consistent()


@pytest.mark.parametrize(
    ("redeem_rate", "points", "discount"),
    [
        pytest.param(100, 199, "1.99", id="rate-100"),
        pytest.param(100, 101, "1.01", id="rate-100-one-over"),
        pytest.param(3, 200, "66.66", id="rate-3-never-rounds-up"),
        pytest.param(7, 100, "14.28", id="rate-7"),
        pytest.param(1000, 1009, "1.00", id="rate-1000-below-a-cent"),
    ],
)
def test_the_discount_is_floored_to_the_cent(store, store_client, redeem_rate, points, discount):
    program(redeem_rate=redeem_rate)
    earn(store=store, phone=PHONE, amount="5000.00")

    response = hold(store_client, points, order_total="1000.00")

    assert response.status_code == 201, response.content
    assert response.json()["discount"] == discount
    assert_ledger_consistent()


def test_a_quote_never_offers_more_than_the_balance(store, store_client):
    earn(store=store, phone=PHONE, amount="300.00")

    assert quote(store_client, "1000.00").json() == {
        "balance": 300,
        "max_points": 300,
        "max_discount": "3.00",
        "redeem_rate": 100,
        "min_points": 100,
    }
    assert_refused(hold(store_client, 301, order_total="1000.00"), 422, "insufficient_points")
    assert balance() == 300
    assert_ledger_consistent()


def test_a_balance_below_the_minimum_can_use_no_points(store, store_client):
    # Given 50 points, below the minimum of 100 per redemption
    earn(store=store, phone=PHONE, amount="50.00")
    before = database_state()

    # Then the quote offers nothing
    assert quote(store_client, "1000.00").json() == {
        "balance": 50,
        "max_points": 0,
        "max_discount": "0.00",
        "redeem_rate": 100,
        "min_points": 100,
    }
    # And the minimum is more than the member has; fewer than the minimum is below it
    error = assert_refused(
        hold(store_client, 100, order_total="1000.00"), 422, "insufficient_points"
    )
    assert error["details"] == {"balance": 50, "requested": 100}
    error = assert_refused(hold(store_client, 50, order_total="1000.00"), 422, "below_minimum")
    assert error["details"] == {"min_points": 100, "requested": 50}
    assert database_state() == before
    assert_ledger_consistent()


def test_a_bill_whose_cap_is_below_the_minimum_can_use_no_points(store, store_client):
    # Given plenty of points but a bill of 1.99, whose cap is 99 points
    earn(store=store, phone=PHONE, amount="5000.00")

    assert quote(store_client, "1.99").json()["max_points"] == 0
    assert_refused(hold(store_client, 100, order_total="1.99"), 422, "redeem_cap_exceeded")
    assert quote(store_client, "2.00").json()["max_points"] == 100
    assert balance() == 5000
    assert_ledger_consistent()


def test_quoting_or_holding_for_an_unknown_phone_is_not_found(store_client):
    assert_refused(quote(store_client, "100.00"), 404, "not_found")
    assert_refused(hold(store_client, 100), 404, "not_found")
    assert Member.objects.count() == 0


# --- Hold, commit, cancel -----------------------------------------------------------


def test_hold_commit_and_cancel_move_the_points_once_each(store, store_client):
    with at(2026, 7, 6, 10, 0):
        earn(store=store, phone=PHONE, amount="1000.00")

        # When points are held for an order
        held = hold(store_client, 500, order_total="80.00", order_id="POS-2")

        # Then they leave the balance at once, held for the program's 15 minutes
        assert held.status_code == 201, held.content
        body = held.json()
        assert body == {
            "id": body["id"],
            "order_id": "POS-2",
            "status": "held",
            "points": 500,
            "discount": "5.00",
            "hold_expires_at": body["hold_expires_at"],
            "member": {"phone": PHONE, "balance": 500},
        }
        assert parse_datetime(body["hold_expires_at"]) == datetime(
            2026, 7, 6, 10, 15, tzinfo=SHANGHAI
        )

        # And committing spends them without moving them again; nothing is held any more
        committed = commit(store_client, body["id"])
        assert committed.status_code == 200, committed.content
        assert committed.json() == {**body, "status": "committed", "hold_expires_at": None}
        assert balance() == 500

        # And cancelling the paid order gives them back
        cancelled = cancel(store_client, body["id"])
        assert cancelled.status_code == 200, cancelled.content
        assert cancelled.json() == {
            **body,
            "status": "cancelled",
            "hold_expires_at": None,
            "member": {"phone": PHONE, "balance": 1000},
        }

    assert kinds() == ["earn", "redeem", "redeem_release"]
    assert_ledger_consistent()


def test_a_held_redemption_can_be_cancelled(store, store_client):
    earn(store=store, phone=PHONE, amount="1000.00")
    held = hold(store_client, 300).json()

    response = cancel(store_client, held["id"])

    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    # And nothing is held any more
    assert response.json()["hold_expires_at"] is None
    assert balance() == 1000
    assert_ledger_consistent()


def test_a_commit_after_a_cancel_is_invalid_state(store, store_client):
    earn(store=store, phone=PHONE, amount="1000.00")
    held = hold(store_client, 300).json()
    assert cancel(store_client, held["id"]).status_code == 200
    before = database_state()

    error = assert_refused(commit(store_client, held["id"]), 409, "invalid_state")

    assert error["details"] == {"status": "cancelled"}
    assert database_state() == before
    assert balance() == 1000
    assert_ledger_consistent()


def test_a_cancel_sent_again_answers_the_cancelled_redemption_and_returns_the_points_once(
    store, store_client
):
    # Given a cancel whose answer the till never got
    earn(store=store, phone=PHONE, amount="1000.00")
    held = hold(store_client, 300).json()
    first = cancel(store_client, held["id"])
    assert first.status_code == 200
    before = database_state()

    # When the till simply sends it again
    again = cancel(store_client, held["id"])

    # Then it is told the redemption is cancelled, and the points came back once
    assert again.status_code == 200, again.content
    assert again.json() == first.json()
    assert database_state() == before
    assert balance() == 1000
    assert kinds() == ["earn", "redeem", "redeem_release"]
    assert_ledger_consistent()


def test_a_commit_sent_again_answers_the_redemption_as_it_is_now(store, store_client):
    earn(store=store, phone=PHONE, amount="1000.00")
    held = hold(store_client, 300).json()
    first = commit(store_client, held["id"])
    committed_at = Redemption.objects.get().committed_at
    # Given the member earned meanwhile
    earn(store=store, phone=PHONE, amount="50.00")
    before = database_state()

    again = commit(store_client, held["id"])

    assert again.status_code == 200, again.content
    assert again.json() == {**first.json(), "member": {"phone": PHONE, "balance": 750}}
    assert database_state() == before
    assert Redemption.objects.get().committed_at == committed_at
    assert_ledger_consistent()


def test_a_cancel_puts_the_points_back_into_the_lots_they_came_from(store, store_client):
    # Given two lots: 100 points expiring 2027-08-01 and 300 expiring 2027-09-01
    with at(2026, 7, 6, 10, 0):
        earn(store=store, phone=PHONE, amount="100.00")
    with at(2026, 8, 6, 10, 0):
        earn(store=store, phone=PHONE, amount="300.00")
        # And a third that never expires
        program(expiry_policy="never")
        earn(store=store, phone=PHONE, amount="200.00")
        original = lots()

        # When 350 points are held, they come from the soonest-expiring lots
        held = hold(store_client, 350, order_total="1000.00").json()
        assert [remaining for _points, remaining, _expiry in lots()] == [0, 50, 200]

        # Then a cancel returns each point to its own lot, with the lot's expiry
        assert cancel(store_client, held["id"]).status_code == 200

    assert lots() == original
    assert [expiry for _points, _remaining, expiry in original] == [
        datetime(2027, 8, 1, tzinfo=SHANGHAI),
        datetime(2027, 9, 1, tzinfo=SHANGHAI),
        None,
    ]
    release = Redemption.objects.get().release_entry
    assert sorted(release.allocations.values_list("points", flat=True)) == [100, 250]
    assert_ledger_consistent()


def test_a_second_hold_for_an_order_with_a_live_redemption_is_invalid_state(store, store_client):
    earn(store=store, phone=PHONE, amount="1000.00")
    first = hold(store_client, 300, order_id="POS-9").json()
    before = database_state()

    # A retry without a key, even with other points, cannot spend twice on one order
    error = assert_refused(hold(store_client, 200, order_id="POS-9"), 409, "invalid_state")
    assert error["details"] == {"order_id": "POS-9"}
    assert database_state() == before

    # Nor once the first is committed
    assert commit(store_client, first["id"]).status_code == 200
    assert_refused(hold(store_client, 300, order_id="POS-9"), 409, "invalid_state")
    assert balance() == 700

    # Once it is cancelled the order may use points again
    assert cancel(store_client, first["id"]).status_code == 200
    again = hold(store_client, 200, order_id="POS-9")
    assert again.status_code == 201, again.content
    assert balance() == 800
    assert_ledger_consistent()


def test_another_store_may_use_the_same_order_id(store, store_client, other_store_client):
    earn(store=store, phone=PHONE, amount="1000.00")

    assert hold(store_client, 300, order_id="POS-1").status_code == 201
    assert hold(other_store_client, 300, order_id="POS-1").status_code == 201
    assert balance() == 400
    assert_ledger_consistent()


def test_a_store_cannot_commit_or_cancel_another_stores_redemption(
    store, store_client, other_store_client
):
    earn(store=store, phone=PHONE, amount="1000.00")
    held = hold(store_client, 300).json()
    before = database_state()

    assert_refused(commit(other_store_client, held["id"]), 404, "not_found")
    assert_refused(cancel(other_store_client, held["id"]), 404, "not_found")

    assert database_state() == before
    assert Redemption.objects.get().status == "held"
    assert_ledger_consistent()


# --- Replays ------------------------------------------------------------------------


def test_a_replayed_hold_answers_the_first_response_and_debits_once(store, store_client):
    earn(store=store, phone=PHONE, amount="1000.00")
    first = hold(store_client, 300, **{"Idempotency-Key": "checkout-1"})
    assert first.status_code == 201

    # Given the balance moved since (a purchase), the replay still tells the first answer
    earn(store=store, phone=PHONE, amount="50.00")
    replay = hold(store_client, 300, **{"Idempotency-Key": "checkout-1"})

    assert replay.status_code == 200
    assert replay.json() == first.json()
    assert Redemption.objects.count() == 1
    assert balance() == 750
    assert kinds() == ["earn", "redeem", "earn"]
    assert_ledger_consistent()


def test_the_same_key_with_another_body_is_a_conflict(store, store_client):
    earn(store=store, phone=PHONE, amount="1000.00")
    assert hold(store_client, 300, **{"Idempotency-Key": "checkout-1"}).status_code == 201
    before = database_state()

    response = hold(store_client, 400, **{"Idempotency-Key": "checkout-1"})

    assert_refused(response, 409, "idempotency_conflict")
    assert database_state() == before
    assert_ledger_consistent()


def test_a_refused_hold_leaves_its_key_free_for_a_retry(store, store_client):
    earn(store=store, phone=PHONE, amount="100.00")
    key = {"Idempotency-Key": "checkout-1"}
    assert_refused(hold(store_client, 300, **key), 422, "insufficient_points")

    earn(store=store, phone=PHONE, amount="300.00")
    retry = hold(store_client, 300, **key)

    assert retry.status_code == 201, retry.content
    assert balance() == 100
    assert_ledger_consistent()


def test_a_commit_retried_with_its_key_after_the_order_was_cancelled_replays_the_commit(
    store, store_client
):
    # Given a commit whose answer was lost, then a cancel of the order at another till
    earn(store=store, phone=PHONE, amount="1000.00")
    held = hold(store_client, 300).json()
    first = store_client.post(
        f"/api/v1/redemptions/{held['id']}/commit", headers={"Idempotency-Key": "pay-1"}
    )
    assert first.status_code == 200
    assert cancel(store_client, held["id"]).status_code == 200
    before = database_state()

    # When the commit's retry arrives with its key
    retry = store_client.post(
        f"/api/v1/redemptions/{held['id']}/commit", headers={"Idempotency-Key": "pay-1"}
    )

    # Then it gets the commit's own answer, and nothing moves
    assert retry.status_code == 200, retry.content
    assert retry.json() == first.json()
    assert database_state() == before
    assert_ledger_consistent()


@pytest.mark.parametrize("action", ["commit", "cancel"])
def test_a_key_sent_again_for_another_redemption_is_a_conflict(store, store_client, action):
    earn(store=store, phone=PHONE, amount="1000.00")
    first = hold(store_client, 300, order_id="POS-1").json()
    second = hold(store_client, 300, order_id="POS-2").json()
    key = {"Idempotency-Key": "till-7"}
    assert store_client.post(f"{HOLD_URL}/{first['id']}/{action}", headers=key).status_code == 200
    before = database_state()

    response = store_client.post(f"{HOLD_URL}/{second['id']}/{action}", headers=key)

    assert_refused(response, 409, "idempotency_conflict")
    assert database_state() == before
    assert Redemption.objects.get(pk=second["id"]).status == "held"


# --- Reading a redemption -----------------------------------------------------------


def read(client, redemption_id):
    return client.get(f"/api/v1/redemptions/{redemption_id}")


def test_a_store_reads_its_redemption_as_it_is_now(store, store_client):
    earn(store=store, phone=PHONE, amount="1000.00")
    held = hold(store_client, 300).json()

    assert read(store_client, held["id"]).json() == held
    committed = commit(store_client, held["id"]).json()
    response = read(store_client, held["id"])

    assert response.status_code == 200, response.content
    assert response.json() == committed
    cancelled = cancel(store_client, held["id"]).json()
    assert read(store_client, held["id"]).json() == cancelled


def test_a_store_cannot_read_another_stores_redemption(store, store_client, other_store_client):
    earn(store=store, phone=PHONE, amount="1000.00")
    held = hold(store_client, 300).json()

    error = assert_refused(read(other_store_client, held["id"]), 404, "not_found")

    assert PHONE not in str(error)


@pytest.mark.parametrize("redemption_id", ["99999999999999999999", "999999999999999999", "0", "x"])
def test_reading_an_absurd_redemption_id_is_not_found(store_client, redemption_id):
    assert_refused(read(store_client, redemption_id), 404, "not_found")


# --- Release of holds that ran out --------------------------------------------------


@pytest.mark.services
def test_beat_releases_a_hold_within_the_minute_it_runs_out(store, store_client):
    with at(2026, 8, 7, 10, 0):
        earn(store=store, phone=PHONE, amount="300.00")
        held = hold(store_client, 250, order_total="1000.00").json()
    runs_out = parse_datetime(held["hold_expires_at"])
    assert balance() == 50

    with beat_started_at(datetime(2026, 8, 7, 10, 0, tzinfo=SHANGHAI)) as beat:
        beat.run_until(runs_out - timedelta(seconds=1))
        assert Redemption.objects.get().status == "held"

        beat.run_until(runs_out + timedelta(minutes=1))

    redemption = Redemption.objects.get()
    assert redemption.status == "released"
    assert runs_out <= redemption.closed_at < runs_out + timedelta(minutes=1)
    assert balance() == 300
    assert_ledger_consistent()


def test_a_hold_not_committed_in_time_is_released_by_the_job(store, store_client):
    # Given 100 points expiring 2027-08-01 and 300 expiring 2027-09-01
    with at(2026, 7, 6, 10, 0):
        earn(store=store, phone=PHONE, amount="100.00")
    with at(2026, 8, 6, 10, 0):
        earn(store=store, phone=PHONE, amount="300.00")
    original = lots()

    # And 250 of them held at 10:00 and never committed
    with at(2026, 8, 7, 10, 0):
        held = hold(store_client, 250, order_total="1000.00").json()
    assert balance() == 150

    # When the job runs a second before the hold runs out, nothing happens
    with at(2026, 8, 7, 10, 14, 59):
        assert holds_release.delay().get() == 0
    assert Redemption.objects.get().status == "held"

    # When it runs once the hold has run out, the points are back in their own lots
    with at(2026, 8, 7, 10, 15, 30):
        assert holds_release.delay().get() == 1
    redemption = Redemption.objects.get(pk=held["id"])
    assert redemption.status == "released"
    assert redemption.release_entry.kind == "redeem_release"
    assert redemption.release_entry.job
    assert lots() == original
    assert balance() == 400

    # And a second run releases nothing twice
    with at(2026, 8, 7, 10, 16, 30):
        assert holds_release.delay().get() == 0
    assert kinds() == ["earn", "earn", "redeem", "redeem_release"]
    assert balance() == 400
    assert_ledger_consistent()


def test_the_job_releases_only_holds_still_held(store, store_client):
    with at(2026, 7, 6, 10, 0):
        earn(store=store, phone=PHONE, amount="1000.00")
        committed = hold(store_client, 200, order_id="PAID").json()
        assert commit(store_client, committed["id"]).status_code == 200
        cancelled = hold(store_client, 200, order_id="GONE").json()
        assert cancel(store_client, cancelled["id"]).status_code == 200
        forgotten = hold(store_client, 300, order_id="LEFT").json()
    with at(2026, 7, 6, 10, 10):
        fresh = hold(store_client, 100, order_id="FRESH").json()
    assert balance() == 400

    released = redemptions_release_expired(as_of=datetime(2026, 7, 6, 10, 20, tzinfo=SHANGHAI))

    assert released == 1
    statuses = dict(Redemption.objects.values_list("pk", "status"))
    assert statuses == {
        committed["id"]: "committed",
        cancelled["id"]: "cancelled",
        forgotten["id"]: "released",
        fresh["id"]: "held",
    }
    assert balance() == 700
    assert_ledger_consistent()


def test_a_released_hold_can_be_neither_committed_nor_cancelled(store, store_client):
    with at(2026, 7, 6, 10, 0):
        earn(store=store, phone=PHONE, amount="1000.00")
        held = hold(store_client, 300).json()
    with at(2026, 7, 6, 11, 0):
        holds_release()
    before = database_state()

    assert_refused(commit(store_client, held["id"]), 409, "invalid_state")
    assert_refused(cancel(store_client, held["id"]), 409, "invalid_state")
    assert database_state() == before
    assert balance() == 1000

    # And the order may use points again
    assert hold(store_client, 300).status_code == 201
    assert_ledger_consistent()


# --- Points whose lots expired while they were spent ----------------------------------


def hold_on_points_that_expire_meanwhile(store, store_client):
    """100 points earned 6 July valid 1 day (to 8 July 00:00), spent 7 July, the order
    cancelled 10 July: the points come back into their lot, already expired."""
    program(expiry_policy="days:1")
    with at(2026, 7, 6, 10, 0):
        earn(store=store, phone=PHONE, amount="100.00")
    with at(2026, 7, 7, 10, 0):
        held = hold(store_client, 100, order_total="1000.00").json()
        assert commit(store_client, held["id"]).status_code == 200
    with at(2026, 7, 10, 10, 0):
        assert cancel(store_client, held["id"]).status_code == 200


def test_a_cancel_returns_points_into_lots_that_expired_meanwhile(store, store_client):
    hold_on_points_that_expire_meanwhile(store, store_client)

    assert lots() == [(100, 100, datetime(2026, 7, 8, tzinfo=SHANGHAI))]
    assert balance() == 100
    assert kinds() == ["earn", "redeem", "redeem_release"]
    assert_ledger_consistent()


def test_points_returned_into_an_expired_lot_expire_at_the_next_run(store, store_client):
    hold_on_points_that_expire_meanwhile(store, store_client)

    with at(2026, 7, 10, 10, 1):
        points_expire(as_of=datetime(2026, 7, 10, 10, 1, tzinfo=SHANGHAI))

    assert balance() == 0
    assert lots() == [(100, 0, datetime(2026, 7, 8, tzinfo=SHANGHAI))]
    assert kinds() == ["earn", "redeem", "redeem_release", "expire"]
    assert_ledger_consistent()


# --- Bad input ----------------------------------------------------------------------

BAD_POINTS = [
    pytest.param("100", id="string"),
    pytest.param("1e2", id="exponent-string"),
    pytest.param(100.0, id="float-whole"),
    pytest.param(100.5, id="float"),
    pytest.param(True, id="true"),
    pytest.param(False, id="false"),
    pytest.param(0, id="zero"),
    pytest.param(-100, id="negative"),
    pytest.param(10**12 + 1, id="above-the-bound"),
    pytest.param(10**30, id="huge"),
    pytest.param(None, id="null"),
    pytest.param([100], id="list"),
    pytest.param({"points": 100}, id="object"),
    pytest.param(MISSING, id="missing"),
]

BAD_TOTALS = [
    pytest.param("0.00", id="zero"),
    pytest.param("-10.00", id="negative"),
    pytest.param("10.001", id="3-decimals"),
    pytest.param("99999999999.00", id="huge"),
    pytest.param(100, id="number"),
    pytest.param(100.5, id="float"),
    pytest.param(True, id="bool"),
    pytest.param(None, id="null"),
    pytest.param("NaN", id="nan"),
    pytest.param(MISSING, id="missing"),
]


def with_field(body: dict, field: str, value) -> dict:
    body = dict(body)
    if value is MISSING:
        del body[field]
    else:
        body[field] = value
    return body


@pytest.fixture
def member_with_points(store):
    earn(store=store, phone=PHONE, amount="1000.00")
    return database_state()


@pytest.mark.parametrize("points", BAD_POINTS)
def test_bad_points_are_a_validation_error(store_client, member_with_points, points):
    response = store_client.post(
        HOLD_URL, with_field(hold_body(100), "points", points), format="json"
    )

    error = assert_refused(response, 400, "validation_error")
    assert set(error["details"]) == {"points"}
    assert database_state() == member_with_points


@pytest.mark.parametrize("url", [QUOTE_URL, HOLD_URL])
@pytest.mark.parametrize("order_total", BAD_TOTALS)
def test_a_bad_order_total_is_a_validation_error(
    store_client, member_with_points, url, order_total
):
    response = store_client.post(
        url, with_field(hold_body(100), "order_total", order_total), format="json"
    )

    error = assert_refused(response, 400, "validation_error")
    assert set(error["details"]) == {"order_total"}
    assert database_state() == member_with_points


@pytest.mark.parametrize("order_id", ["", "POS 1", "x" * 65, 42, None, MISSING])
def test_a_bad_order_id_is_a_validation_error(store_client, member_with_points, order_id):
    response = store_client.post(
        HOLD_URL, with_field(hold_body(100), "order_id", order_id), format="json"
    )

    assert_refused(response, 400, "validation_error")
    assert database_state() == member_with_points


@pytest.mark.parametrize("body", ["[]", "null", '"points"', '{"points": 100,'])
def test_a_body_that_is_not_an_object_is_a_validation_error(store_client, member_with_points, body):
    response = store_client.post(HOLD_URL, body, content_type="application/json")

    assert_refused(response, 400, "validation_error")
    assert database_state() == member_with_points


@pytest.mark.parametrize("action", ["commit", "cancel"])
@pytest.mark.parametrize(
    "redemption_id",
    ["99999999999999999999", "999999999999999999", "9223372036854775808", "0", "-1", "1.5", "x"],
)
def test_an_absurd_redemption_id_is_not_found(
    store, store_client, member_with_points, action, redemption_id
):
    response = store_client.post(f"/api/v1/redemptions/{redemption_id}/{action}")

    assert_refused(response, 404, "not_found")
    assert database_state() == member_with_points


@pytest.mark.parametrize("url", [QUOTE_URL, HOLD_URL, "/api/v1/redemptions/1/commit"])
def test_the_redemption_endpoints_need_a_store_key(member_with_points, url):
    response = APIClient().post(url, hold_body(100), format="json")

    assert_refused(response, 401, "not_authenticated")
    assert database_state() == member_with_points
