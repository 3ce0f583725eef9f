"""Many changes at once to the same members, each sending after its commit: every
member's events reach the receiver in the order of their sequence numbers, none missing."""

import json
from collections import defaultdict

import pytest

from tests.concurrency import run_together
from tests.factories import MemberFactory
from tests.webhooks.conftest import emit
from webhooks.models import Delivery
from webhooks.tasks import deliveries_send

pytestmark = pytest.mark.django_db(transaction=True)

THREADS = 4
MEMBERS = 3
EVENTS_PER_MEMBER_PER_THREAD = 4


def test_each_member_s_events_arrive_in_sequence_order_with_no_gap(endpoint, receiver):
    members = [MemberFactory().pk for _ in range(MEMBERS)]

    def changes(thread):
        # Each commit kicks the sending, run right here (Celery is eager in tests):
        # fan-outs and lanes of several threads meet, as several workers' would.
        for n in range(EVENTS_PER_MEMBER_PER_THREAD):
            for member_id in members:
                emit(member_id, thread=thread, n=n)

    run_together([lambda thread=thread: changes(thread) for thread in range(THREADS)])
    deliveries_send()

    received = defaultdict(list)
    for request in receiver.requests:
        data = json.loads(request.body)["data"]
        received[data["member"]["id"]].append(data["sequence"])
    expected = list(range(1, THREADS * EVENTS_PER_MEMBER_PER_THREAD + 1))
    assert {member: received[member] for member in members} == {
        member: expected for member in members
    }
    assert set(Delivery.objects.values_list("status", flat=True)) == {Delivery.Status.DELIVERED}
