"""What the issue promises a storefront, end to end: purchases made at once for the
same members, a receiver that is down for a while, and a real worker sending; the
receiver verifies every request with the Standard Webhooks library and gets each
member's every change exactly in sequence, the last one with the member's balance."""

import time
from collections import defaultdict
from decimal import Decimal

import pytest
from django.utils import timezone
from standardwebhooks import Webhook

from loyalty.models import Member
from loyalty.services.purchases import purchase_record
from tests.concurrency import run_together
from tests.webhooks.conftest import SEND_TASK, all_delivered
from webhooks.models import Delivery, Event

pytestmark = [
    pytest.mark.services,
    pytest.mark.django_db(transaction=True),
    pytest.mark.filterwarnings("ignore::celery.exceptions.AlwaysEagerIgnored"),
]

PHONES = ["+8613800138001", "+8613800138002", "+8613800138003"]
PURCHASES_EACH = 4
OUTAGE_ANSWERS = [503, 503, 429, 500, 502]
SWEEP_EVERY_SECONDS = 1


def sweep_until_delivered(worker) -> None:
    """Stand in for beat, whose sweep finds the retries due: a retry after the first
    (5 minutes, then 30…) is brought forward to now rather than waited for."""
    last_sweep = float("-inf")

    def delivered() -> bool:
        nonlocal last_sweep
        if all_delivered():
            return True
        if time.monotonic() - last_sweep > SWEEP_EVERY_SECONDS:
            Delivery.objects.filter(
                status=Delivery.Status.PENDING, next_try_at__gt=timezone.now()
            ).update(next_try_at=timezone.now())
            worker.send(SEND_TASK)
            last_sweep = time.monotonic()
        return False

    worker.wait_until(delivered, "not every event was delivered", seconds=120)


def test_concurrent_purchases_reach_the_storefront_in_each_members_order_through_an_outage(
    worker, store, endpoint, receiver, no_sending_here
):
    receiver.answer(*OUTAGE_ANSWERS)
    run_together(
        [
            lambda phone=phone, n=n: purchase_record(
                store=store, phone=phone, order_id=f"{phone}-{n}", amount=Decimal("10.00")
            )
            for phone in PHONES
            for n in range(PURCHASES_EACH)
        ]
    )

    worker.send(SEND_TASK)
    sweep_until_delivered(worker)

    verifier = Webhook(endpoint.secret)
    accepted = defaultdict(list)
    for number, request in enumerate(receiver.requests):
        body = verifier.verify(request.body, request.headers)
        if number >= len(OUTAGE_ANSWERS):
            accepted[body["data"]["member"]["id"]].append(body)
    for member in Member.objects.filter(phone__in=PHONES):
        events = accepted[member.pk]
        assert [event["data"]["sequence"] for event in events] == list(
            range(1, PURCHASES_EACH + 2)
        ), "each change once, in sequence order"
        assert [event["type"] for event in events] == ["member.created"] + [
            "points.earned"
        ] * PURCHASES_EACH
        assert [event["data"]["balance"] for event in events] == [0, 10, 20, 30, 40]
        assert events[-1]["data"]["balance"] == member.balance
    assert len(receiver.requests) == Event.objects.count() + len(OUTAGE_ANSWERS)
