"""The sending in a real Celery worker against Redis, the test database and a real
receiver: the first retry comes from a task counted down to it, and a worker killed
in the middle of a try loses no event."""

import json
from collections import defaultdict

import pytest
from django.utils import timezone

from config.celery import app as celery_app
from tests.factories import MemberFactory
from tests.processes import purge_default_queue, start_worker, stop_worker
from tests.webhooks.conftest import emit
from webhooks import outbox
from webhooks.models import Delivery, Event

pytestmark = [
    pytest.mark.services,
    pytest.mark.django_db(transaction=True),
    # conftest makes tasks eager; send_task goes through the broker all the same, as wanted here.
    pytest.mark.filterwarnings("ignore::celery.exceptions.AlwaysEagerIgnored"),
]

SEND_TASK = "webhooks.tasks.deliveries_send"
# The worker's tries end after 2 s, so a head's lease (4 times that) runs out soon
# after its worker dies.
TIMEOUT_SECONDS = 2
# Leases run out on their own clock: a wait, not a timed assertion.
LEASE_WAIT_SECONDS = 4 * TIMEOUT_SECONDS + 30


@pytest.fixture
def worker(transactional_db, tmp_path):
    """One worker on a queue of its own that also takes the lanes' tasks from the
    default queue, allowed to reach the receiver on 127.0.0.1."""
    purge_default_queue()
    worker = start_worker(
        tmp_path,
        WEBHOOKS_ALLOW_HTTP="1",
        WEBHOOKS_ALLOWED_NETWORKS="127.0.0.1/32",
        WEBHOOKS_TIMEOUT_SECONDS=str(TIMEOUT_SECONDS),
    )
    try:
        worker.also_consume(celery_app.conf.task_default_queue)
        yield worker
    finally:
        stop_worker(worker)


@pytest.fixture
def no_sending_here(monkeypatch):
    """The test's own commits kick nothing (tasks are eager here): the worker sends."""
    monkeypatch.setitem(outbox._ENABLED_ENDPOINTS_SEEN, "at", float("inf"))
    monkeypatch.setitem(outbox._ENABLED_ENDPOINTS_SEEN, "any", False)


def all_delivered() -> bool:
    deliveries = Delivery.objects.all()
    return deliveries.exists() and not deliveries.exclude(status=Delivery.Status.DELIVERED).exists()


def test_the_first_retry_comes_from_a_task_counted_down_to_it(
    worker, endpoint, receiver, member, no_sending_here
):
    receiver.answer(503)
    emit(member.pk)

    # Sent once and no beat running: the second try can only come from the countdown.
    worker.send(SEND_TASK)

    worker.wait_until(all_delivered, "the retry never went through")
    assert receiver.webhook_ids() == [Event.objects.get().webhook_id] * 2


def test_a_worker_killed_mid_delivery_loses_no_event(worker, endpoint, receiver, no_sending_here):
    members = [MemberFactory().pk for _ in range(2)]
    for _ in range(3):
        for member_id in members:
            emit(member_id)
    receiver.answer("hang")

    worker.send(SEND_TASK)
    worker.wait_until(lambda: len(receiver.requests) == 1, "the first try never arrived")
    worker.kill_pool_process()
    receiver.released.set()

    # The killed try's lease holds its lane until it runs out; then the sweep, as
    # beat runs it, sends the head again.
    worker.wait_until(
        lambda: not Delivery.objects.filter(leased_until__gt=timezone.now()).exists(),
        "the killed try's lease never ran out",
        seconds=LEASE_WAIT_SECONDS,
    )
    worker.send(SEND_TASK)
    worker.wait_until(all_delivered, "the killed try's lane was never sent")

    assert "SIGKILL" in worker.output()
    received = defaultdict(list)
    for request in receiver.requests:
        data = json.loads(request.body)["data"]
        received[data["member"]["id"]].append(data["sequence"])
    hung = json.loads(receiver.requests[0].body)["data"]["member"]["id"]
    assert received == {
        member_id: [1, 1, 2, 3] if member_id == hung else [1, 2, 3] for member_id in members
    }
    # The killed try left no attempt: it died mid-send, before any answer or timeout.
    head = Delivery.objects.get(member_id=hung, sequence=1)
    assert [(a.status_code, a.error) for a in head.attempts.all()] == [(200, "")]
    assert head.tries == 2
