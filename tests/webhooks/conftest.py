import pytest
from django.db import transaction

from config.celery import app as celery_app
from loyalty.services.points import member_lock
from tests.factories import MemberFactory
from tests.processes import purge_default_queue, start_worker, stop_worker
from tests.webhooks.receiver import Receiver
from webhooks import outbox
from webhooks.models import Delivery, Endpoint, EventType
from webhooks.outbox import event_emit


@pytest.fixture
def receiver():
    receiver = Receiver()
    yield receiver
    receiver.stop()


@pytest.fixture(autouse=True)
def _endpoints_looked_up_afresh(monkeypatch):
    """A process remembers for 10 s whether any endpoint is enabled; each test's own
    endpoints decide whether a commit kicks the sending."""
    monkeypatch.setitem(outbox._ENABLED_ENDPOINTS_SEEN, "at", float("-inf"))


@pytest.fixture
def endpoint(store, receiver):
    return Endpoint.objects.create(
        store=store, url=receiver.url, event_types=list(EventType.values)
    )


@pytest.fixture
def member(db):
    return MemberFactory()


def emit(member_id: int, **data) -> None:
    """One event of the member's, in a transaction that locks the member first, as
    the points services do."""
    with transaction.atomic():
        member_lock(member_id)
        event_emit(member_id=member_id, type=EventType.POINTS_ADJUSTED, data={"balance": 0, **data})


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
