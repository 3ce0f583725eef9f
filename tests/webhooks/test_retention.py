"""Old events are pruned with their deliveries and attempts; an event still waiting
to be sent, and a recent one, stay."""

from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from tests.factories import MemberFactory, StoreFactory
from webhooks.models import Attempt, Delivery, Endpoint, Event
from webhooks.outbox import event_emit
from webhooks.retention import events_prune
from webhooks.tasks import events_prune as events_prune_task

pytestmark = pytest.mark.django_db

KEEP_DAYS = 30


@pytest.fixture
def endpoint():
    return Endpoint.objects.create(
        store=StoreFactory(), url="https://hooks.example.com/", event_types=["points.earned"]
    )


def event_of(*, days_ago: int, delivery_status: str | None, endpoint: Endpoint) -> Event:
    member = MemberFactory()
    with transaction.atomic():
        event_emit(
            member_id=member.pk,
            type="points.earned",
            data={"balance": 10, "points": 10},
            at=timezone.now() - timedelta(days=days_ago),
        )
    event = Event.objects.get(member=member)
    Event.objects.filter(pk=event.pk).update(fanned_out=True)
    if delivery_status:
        delivery = Delivery.objects.create(
            endpoint=endpoint, event=event, member_id=member.pk, sequence=1, status=delivery_status
        )
        Attempt.objects.create(
            delivery=delivery, started_at=event.created_at, duration_ms=12, status_code=200
        )
    return event


def test_an_old_event_goes_with_its_deliveries_and_their_attempts(endpoint):
    old = event_of(days_ago=KEEP_DAYS + 1, delivery_status="delivered", endpoint=endpoint)

    assert events_prune(now=timezone.now(), keep_days=KEEP_DAYS) == 1

    assert not Event.objects.filter(pk=old.pk).exists()
    assert not Delivery.objects.filter(event_id=old.pk).exists()
    assert not Attempt.objects.exists()


def test_an_event_still_waiting_to_be_sent_stays_however_old(endpoint):
    waiting = event_of(days_ago=KEEP_DAYS + 5, delivery_status="pending", endpoint=endpoint)

    assert events_prune(now=timezone.now(), keep_days=KEEP_DAYS) == 0

    assert Delivery.objects.get(event=waiting).status == "pending"


def test_recent_events_and_failed_ones_within_the_window_stay(endpoint):
    recent = event_of(days_ago=KEEP_DAYS - 1, delivery_status="failed", endpoint=endpoint)
    unsent = event_of(days_ago=KEEP_DAYS - 1, delivery_status=None, endpoint=endpoint)

    assert events_prune(now=timezone.now(), keep_days=KEEP_DAYS) == 0

    assert set(Event.objects.values_list("pk", flat=True)) == {recent.pk, unsent.pk}


def test_pruning_goes_chunk_by_chunk_until_nothing_old_is_left(endpoint, monkeypatch):
    monkeypatch.setattr("webhooks.retention.CHUNK", 2)
    for _ in range(5):
        event_of(days_ago=KEEP_DAYS + 1, delivery_status="delivered", endpoint=endpoint)

    assert events_prune(now=timezone.now(), keep_days=KEEP_DAYS) == 5
    assert not Event.objects.exists()


def test_the_daily_task_keeps_as_many_days_as_the_setting_says(endpoint, settings):
    settings.WEBHOOKS_KEEP_DAYS = 7
    event_of(days_ago=8, delivery_status="delivered", endpoint=endpoint)
    kept = event_of(days_ago=6, delivery_status="delivered", endpoint=endpoint)

    assert events_prune_task() == 1
    assert list(Event.objects.values_list("pk", flat=True)) == [kept.pk]
