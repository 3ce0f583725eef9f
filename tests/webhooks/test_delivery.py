"""Deliveries to a real receiver on 127.0.0.1: what it gets, signed how, and what the
engine does with each kind of answer."""

import json
from datetime import UTC, timedelta

import pytest
import time_machine
from django.db import transaction
from django.utils import timezone
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from tests.webhooks.conftest import emit
from webhooks import tasks
from webhooks.delivery import MAX_TRIES, events_fan_out
from webhooks.models import Delivery, Endpoint, Event, secret_new
from webhooks.tasks import deliveries_send

pytestmark = pytest.mark.django_db


def deliveries_of(endpoint):
    return list(Delivery.objects.filter(endpoint=endpoint).order_by("sequence"))


def retry_now() -> None:
    """Bring the pending retries forward instead of waiting for them."""
    Delivery.objects.filter(status=Delivery.Status.PENDING).update(next_try_at=timezone.now())


def test_the_receiver_verifies_the_signature_with_the_standard_webhooks_library(
    endpoint, receiver, member
):
    emit(member.pk, points=5, reason="goodwill")

    deliveries_send()

    [request] = receiver.requests
    payload = Webhook(endpoint.secret).verify(request.body, request.headers)
    event = Event.objects.get()
    assert request.headers["webhook-id"] == event.webhook_id == payload["data"]["id"]
    assert request.headers["content-type"] == "application/json"
    assert request.headers["user-agent"] == "loyalty-points-webhooks"
    assert payload == {
        "type": "points.adjusted",
        "timestamp": event.created_at.astimezone(UTC).isoformat(),
        "data": {
            "id": event.webhook_id,
            "sequence": 1,
            "member": {"id": member.pk},
            "balance": 0,
            "points": 5,
            "reason": "goodwill",
        },
    }
    assert deliveries_of(endpoint)[0].status == Delivery.Status.DELIVERED


def test_during_a_rotation_both_the_new_and_the_old_secret_verify(endpoint, receiver, member):
    old_secret = endpoint.secret
    endpoint.previous_secret = old_secret
    endpoint.previous_secret_until = timezone.now() + timedelta(days=1)
    endpoint.secret = secret_new()
    endpoint.save()
    emit(member.pk)

    deliveries_send()

    [request] = receiver.requests
    Webhook(endpoint.secret).verify(request.body, request.headers)
    Webhook(old_secret).verify(request.body, request.headers)


def test_after_the_rotation_s_grace_the_old_secret_no_longer_verifies(endpoint, receiver, member):
    old_secret = endpoint.secret
    endpoint.previous_secret = old_secret
    endpoint.previous_secret_until = timezone.now() - timedelta(seconds=1)
    endpoint.secret = secret_new()
    endpoint.save()
    emit(member.pk)

    deliveries_send()

    [request] = receiver.requests
    Webhook(endpoint.secret).verify(request.body, request.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(old_secret).verify(request.body, request.headers)


def test_the_phone_is_sent_only_to_an_endpoint_that_asked_for_it(endpoint, receiver, member):
    endpoint.include_phone = True
    endpoint.save()
    emit(member.pk)

    deliveries_send()

    body = json.loads(receiver.requests[0].body)
    assert body["data"]["member"] == {"id": member.pk, "phone": member.phone}


def test_a_test_event_goes_to_its_one_endpoint_only(endpoint, receiver, store):
    other = Endpoint.objects.create(store=store, url=receiver.url + "/other", event_types=[])
    Event.objects.create(type="webhook.test", data={"balance": None}, only_endpoint=other)

    deliveries_send()

    [request] = receiver.requests
    assert request.path == "/hook/other"
    data = json.loads(request.body)["data"]
    assert (data["sequence"], data["member"]) == (None, None)


def test_a_failing_receiver_gets_the_event_again_until_it_takes_it_and_only_then_the_next(
    endpoint, receiver, member
):
    receiver.answer(500, 503)
    emit(member.pk)
    emit(member.pk)
    first, second = Event.objects.order_by("sequence")

    deliveries_send()
    head = deliveries_of(endpoint)[0]
    assert head.status == Delivery.Status.PENDING
    assert head.next_try_at - head.attempts.get().started_at >= timedelta(seconds=5)
    retry_now()
    deliveries_send()

    assert receiver.webhook_ids() == [first.webhook_id, first.webhook_id]
    retry_now()
    deliveries_send()

    assert receiver.webhook_ids() == [first.webhook_id] * 3 + [second.webhook_id]
    head = deliveries_of(endpoint)[0]
    assert head.status == Delivery.Status.DELIVERED
    assert [attempt.status_code for attempt in head.attempts.order_by("started_at")] == [
        500,
        503,
        200,
    ]


def test_the_worker_says_in_its_log_which_event_failed_where_and_why(
    endpoint, receiver, member, caplog
):
    receiver.answer(503)
    emit(member.pk)

    with caplog.at_level("WARNING", logger="webhooks.delivery"):
        deliveries_send()

    event = Event.objects.get()
    assert f"webhook {event.webhook_id} to endpoint {endpoint.pk} failed: 503" in caplog.text


def test_after_ten_failed_tries_the_delivery_fails_and_the_lane_moves_on(
    endpoint, receiver, member
):
    receiver.answer(*[500] * MAX_TRIES)
    emit(member.pk)
    emit(member.pk)

    for _ in range(MAX_TRIES):
        deliveries_send()
        retry_now()

    first, second = deliveries_of(endpoint)
    assert (first.status, first.tries) == (Delivery.Status.FAILED, 10)
    assert second.status == Delivery.Status.DELIVERED
    assert len(receiver.requests) == MAX_TRIES + 1


def test_410_gone_disables_the_endpoint_and_nothing_more_is_sent(endpoint, receiver, member):
    receiver.answer(410)
    emit(member.pk)
    emit(member.pk)

    deliveries_send()
    deliveries_send()

    endpoint.refresh_from_db()
    assert (endpoint.is_enabled, endpoint.disabled_because) == (False, "gone")
    assert len(receiver.requests) == 1
    assert [d.status for d in deliveries_of(endpoint)] == [Delivery.Status.PENDING] * 2


def test_a_4xx_fails_the_delivery_at_once_and_the_lane_moves_on(endpoint, receiver, member):
    receiver.answer(422)
    emit(member.pk)
    emit(member.pk)

    deliveries_send()

    assert [d.status for d in deliveries_of(endpoint)] == [
        Delivery.Status.FAILED,
        Delivery.Status.DELIVERED,
    ]


def test_an_endpoint_failing_for_three_days_is_disabled_and_a_success_clears_the_count(
    endpoint, receiver, member
):
    start = timezone.now()
    with time_machine.travel(start, tick=True):
        receiver.answer(500)
        emit(member.pk)
        deliveries_send()
        endpoint.refresh_from_db()
        assert endpoint.failing_since is not None
        retry_now()
        deliveries_send()
        endpoint.refresh_from_db()
        assert endpoint.failing_since is None

        receiver.answer(500)
        emit(member.pk)
        deliveries_send()
    with time_machine.travel(start + timedelta(days=2), tick=True):
        receiver.answer(500)
        retry_now()
        deliveries_send()
        endpoint.refresh_from_db()
        assert endpoint.is_enabled
    with time_machine.travel(start + timedelta(days=3, minutes=1), tick=True):
        receiver.answer(500)
        retry_now()
        deliveries_send()

    endpoint.refresh_from_db()
    assert (endpoint.is_enabled, endpoint.disabled_because) == (False, "failing")


def test_a_redirect_is_not_followed_and_the_delivery_fails(endpoint, receiver, member):
    receiver.answer("redirect")
    emit(member.pk)

    deliveries_send()

    assert [request.path for request in receiver.requests] == ["/hook"]
    [delivery] = deliveries_of(endpoint)
    assert delivery.status == Delivery.Status.FAILED
    attempt = delivery.attempts.get()
    assert (attempt.status_code, attempt.error) == (302, "redirects are not followed")


def test_a_loopback_endpoint_is_refused_unless_its_network_is_allowed(
    endpoint, receiver, member, settings
):
    settings.WEBHOOKS_ALLOWED_NETWORKS = []
    emit(member.pk)

    deliveries_send()

    assert receiver.requests == []
    attempt = deliveries_of(endpoint)[0].attempts.get()
    assert attempt.error == "refused: 127.0.0.1 is a loopback address"


def test_fan_out_twice_makes_one_delivery_per_event_and_endpoint(endpoint, member):
    emit(member.pk)

    assert events_fan_out() == 1
    assert events_fan_out() == 0
    assert Delivery.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_an_event_whose_transaction_rolled_back_is_never_sent(endpoint, receiver, member):
    with pytest.raises(RuntimeError), transaction.atomic():
        emit(member.pk, points=1)
        raise RuntimeError("the change failed after its event")
    emit(member.pk, points=2)

    deliveries_send()

    [request] = receiver.requests
    assert json.loads(request.body)["data"]["points"] == 2


def test_a_lane_waiting_in_the_queue_is_queued_once_however_often_the_sending_is_kicked(
    endpoint, member, monkeypatch
):
    queued = []
    monkeypatch.setattr(tasks.lane_send, "delay", lambda *lane: queued.append(lane))
    emit(member.pk)

    deliveries_send()
    deliveries_send()

    assert queued == [(endpoint.pk, member.pk)]
