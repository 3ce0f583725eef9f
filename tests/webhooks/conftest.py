import pytest
from django.db import transaction

from loyalty.services.points import member_lock
from tests.factories import MemberFactory
from tests.webhooks.receiver import Receiver
from webhooks import outbox
from webhooks.models import Endpoint, EventType
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
