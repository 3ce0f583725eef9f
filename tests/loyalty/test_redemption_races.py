"""Checkout redemptions racing, with real threads behind a barrier against PostgreSQL
row locks: the balance never goes below zero, no hold ends in two states, and a
retried request never spends twice."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from core.errors import AppError
from loyalty.models import LedgerEntry, Member, Redemption
from loyalty.services.redemptions import (
    redemption_cancel,
    redemption_commit,
    redemption_hold,
    redemptions_release_expired,
)
from loyalty.services.stores import store_create
from tests.concurrency import run_together
from tests.factories import earn
from tests.invariants import assert_ledger_consistent

pytestmark = pytest.mark.django_db(transaction=True)

PHONE = "+8613800138000"
ROUNDS = 6


def refusal_codes(results):
    return sorted(r.code for r in results if isinstance(r, AppError))


def member():
    return Member.objects.get(phone=PHONE)


def hold(store, order_id, points=100, order_total="1000.00"):
    return lambda: redemption_hold(
        store=store,
        member=member(),
        order_id=order_id,
        order_total=Decimal(order_total),
        points=points,
    )


def assert_never_negative():
    assert not LedgerEntry.objects.filter(balance_after__lt=0).exists()


def test_forty_holds_against_a_thousand_points_spend_exactly_the_balance(store):
    # Given 1000 points, and 40 checkouts of 100 points each, each for its own order
    earn(store=store, phone=PHONE, amount="1000.00")

    results = run_together([hold(store, f"POS-{i}") for i in range(40)])

    # Then exactly 10 hold, the rest are refused for want of points, and nothing is below zero
    held = [r for r in results if isinstance(r, Redemption)]
    assert len(held) == 10
    assert refusal_codes(results) == ["insufficient_points"] * 30
    assert member().balance == 0
    assert Redemption.objects.filter(status="held").count() == 10
    assert_never_negative()
    assert_ledger_consistent()


def test_many_holds_for_one_order_at_once_hold_once(store):
    earn(store=store, phone=PHONE, amount="5000.00")

    results = run_together([hold(store, "POS-1") for _ in range(8)])

    assert len([r for r in results if isinstance(r, Redemption)]) == 1
    assert refusal_codes(results) == ["invalid_state"] * 7
    assert member().balance == 4900
    assert_ledger_consistent()


def test_one_idempotency_key_sent_many_times_at_once_spends_once(store_and_key):
    store, key = store_and_key
    earn(store=store, phone=PHONE, amount="5000.00")
    body = {"phone": PHONE, "order_id": "POS-1", "order_total": "1000.00", "points": 300}

    def post():
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
        return client.post(
            "/api/v1/redemptions", body, format="json", headers={"Idempotency-Key": "k-1"}
        )

    responses = run_together([post for _ in range(8)])

    assert sorted(r.status_code for r in responses) == [200] * 7 + [201]
    assert all(r.json() == responses[0].json() for r in responses)
    assert Redemption.objects.count() == 1
    assert member().balance == 4700
    assert_ledger_consistent()


def test_a_cancel_racing_a_commit_always_ends_cancelled_with_the_points_back(store):
    # A paid order may still be cancelled, so the cancel wins either way: the commit
    # lands first (and is then undone) or comes second and is refused.
    earn(store=store, phone=PHONE, amount="5000.00")
    holds = [hold(store, f"POS-{i}")() for i in range(ROUNDS)]

    for redemption in holds:
        commit_result, cancel_result = run_together(
            [
                lambda pk=redemption.pk: redemption_commit(store=store, redemption_id=pk),
                lambda pk=redemption.pk: redemption_cancel(store=store, redemption_id=pk),
            ]
        )

        assert isinstance(cancel_result, Redemption)
        assert isinstance(commit_result, Redemption) or commit_result.code == "invalid_state"
        redemption.refresh_from_db()
        assert redemption.status == "cancelled"
        assert redemption.release_entry.points == 100

    assert member().balance == 5000
    assert LedgerEntry.objects.filter(kind="redeem_release").count() == ROUNDS
    assert_ledger_consistent()


def test_two_cancels_racing_both_answer_cancelled_and_return_the_points_once(store):
    # A till that lost the answer retries while the first cancel is still running
    earn(store=store, phone=PHONE, amount="5000.00")
    holds = [hold(store, f"POS-{i}")() for i in range(ROUNDS)]

    for redemption in holds:
        results = run_together(
            [lambda pk=redemption.pk: redemption_cancel(store=store, redemption_id=pk)] * 2
        )

        assert refusal_codes(results) == []
        assert [r.status for r in results] == ["cancelled", "cancelled"]

    assert member().balance == 5000
    assert LedgerEntry.objects.filter(kind="redeem_release").count() == ROUNDS
    assert_ledger_consistent()


def test_two_commits_racing_both_answer_committed_and_commit_once(store):
    earn(store=store, phone=PHONE, amount="5000.00")
    holds = [hold(store, f"POS-{i}")() for i in range(ROUNDS)]

    for redemption in holds:
        results = run_together(
            [lambda pk=redemption.pk: redemption_commit(store=store, redemption_id=pk)] * 2
        )

        assert refusal_codes(results) == []
        assert [r.status for r in results] == ["committed", "committed"]
        # Both tell the one commit: the second found it done and wrote nothing
        assert results[0].committed_at == results[1].committed_at

    assert Redemption.objects.filter(status="committed").count() == ROUNDS
    assert member().balance == 5000 - 100 * ROUNDS
    assert LedgerEntry.objects.count() == 1 + ROUNDS
    assert_ledger_consistent()


def test_a_commit_racing_the_release_job_has_exactly_one_winner(store):
    earn(store=store, phone=PHONE, amount="5000.00")
    holds = [hold(store, f"POS-{i}")() for i in range(ROUNDS)]

    for redemption in holds:
        # Given this hold (and only this one) ran out a second ago
        now = timezone.now()
        Redemption.objects.filter(pk=redemption.pk).update(
            hold_expires_at=now - timedelta(seconds=1)
        )

        commit_result, released = run_together(
            [
                lambda pk=redemption.pk: redemption_commit(store=store, redemption_id=pk),
                lambda now=now: redemptions_release_expired(as_of=now),
            ]
        )

        redemption.refresh_from_db()
        if isinstance(commit_result, Redemption):
            assert (released, redemption.status) == (0, "committed")
        else:
            assert commit_result.code == "invalid_state"
            assert (released, redemption.status) == (1, "released")

    committed = Redemption.objects.filter(status="committed").count()
    assert member().balance == 5000 - 100 * committed
    assert_ledger_consistent()


def test_holds_by_two_stores_and_the_release_job_at_once_keep_every_invariant(store):
    other_store, _key = store_create(name="POS counter")
    earn(store=store, phone=PHONE, amount="3000.00")
    stale = [hold(store, f"OLD-{i}")() for i in range(5)]
    now = timezone.now()
    Redemption.objects.update(hold_expires_at=now - timedelta(minutes=1))

    # Two runs of the job overlap, while both stores hold points for new orders
    calls = [lambda: redemptions_release_expired(as_of=now)] * 2
    calls += [hold(s, f"NEW-{i}", points=200) for i in range(6) for s in (store, other_store)]
    results = run_together(calls)

    assert sum(results[:2]) == 5
    assert all(isinstance(r, Redemption) for r in results[2:])
    assert {r.status for r in Redemption.objects.filter(pk__in=[s.pk for s in stale])} == {
        "released"
    }
    assert member().balance == 3000 - 12 * 200
    assert_ledger_consistent()
