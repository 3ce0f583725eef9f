"""The sending in a real Celery worker against Redis, the test database and a real
receiver: the first retry comes from a task counted down to it, and a worker killed
in the middle of a try loses no event."""

import json
from collections import defaultdict

import pytest
from django.utils import timezone

from tests.factories import MemberFactory
from tests.webhooks.conftest import LEASE_WAIT_SECONDS, SEND_TASK, all_delivered, emit
from webhooks.models import Delivery, Event

pytestmark = [
    pytest.mark.services,
    pytest.mark.django_db(transaction=True),
    # conftest makes tasks eager; send_task goes through the broker all the same, as wanted here.
    pytest.mark.filterwarnings("ignore::celery.exceptions.AlwaysEagerIgnored"),
]


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
