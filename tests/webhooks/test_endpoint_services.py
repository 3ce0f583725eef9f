"""The services behind admin's webhook pages: what an endpoint accepts, how its secret
turns over, and what a test or a resend puts in the outbox."""

from datetime import timedelta

import pytest
import time_machine
from django.contrib.admin.models import LogEntry
from django.db import transaction
from django.utils import timezone

from accounts.models import User
from core.errors import AppError
from tests.factories import MemberFactory
from webhooks.delivery import events_fan_out
from webhooks.models import TEST_EVENT_TYPE, Delivery, Endpoint, Event, EventType
from webhooks.outbox import deliveries_kick, event_emit
from webhooks.services import (
    deliveries_resend_failed,
    delivery_resend,
    endpoint_create,
    endpoint_disable,
    endpoint_enable,
    endpoint_secret_rotate,
    endpoint_test_send,
)

pytestmark = pytest.mark.django_db

URL = "https://shop.example.com/hooks"


@pytest.fixture
def staff(db):
    return User.objects.create_user(phone="+8613900000001", is_staff=True)


@pytest.fixture
def endpoint(store):
    return endpoint_create(
        store=store, url=URL, event_types=[EventType.POINTS_EARNED], include_phone=False
    )


def failed_delivery(endpoint, *, finished_at=None, status=Delivery.Status.FAILED) -> Delivery:
    event = Event.objects.create(type=TEST_EVENT_TYPE, data={}, only_endpoint=endpoint)
    return Delivery.objects.create(
        endpoint=endpoint,
        event=event,
        status=status,
        tries=10,
        finished_at=finished_at or timezone.now(),
    )


def refusal_of(**changes) -> AppError:
    arguments = {
        "url": URL,
        "event_types": [EventType.POINTS_EARNED],
        "include_phone": False,
        **changes,
    }
    with pytest.raises(AppError) as refused:
        endpoint_create(**arguments)
    return refused.value


def test_plain_http_is_refused_unless_the_setting_allows_it(store, settings):
    settings.WEBHOOKS_ALLOW_HTTP = False
    refused = refusal_of(store=store, url="http://shop.example.com/hooks")

    settings.WEBHOOKS_ALLOW_HTTP = True
    allowed = endpoint_create(
        store=store,
        url="http://127.0.0.1:8000/hooks",
        event_types=[EventType.POINTS_EARNED],
        include_phone=False,
    )

    assert refused.code == "validation_error"
    assert refused.details == {
        "url": ["The URL must be an HTTPS address: events are sent encrypted only."]
    }
    assert allowed.url == "http://127.0.0.1:8000/hooks"


def test_http_follows_debug_while_the_setting_is_absent(store, settings):
    del settings.WEBHOOKS_ALLOW_HTTP
    settings.DEBUG = True

    endpoint = endpoint_create(
        store=store,
        url="http://127.0.0.1:8000/hooks",
        event_types=[EventType.POINTS_EARNED],
        include_phone=False,
    )

    assert endpoint.pk


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"url": "not a url"}, "url"),
        ({"url": "ftp://shop.example.com/hooks"}, "url"),
        ({"event_types": []}, "event_types"),
        ({"event_types": ["points.earned", "points.stolen"]}, "event_types"),
        ({"event_types": [TEST_EVENT_TYPE]}, "event_types"),
    ],
)
def test_bad_urls_and_event_types_are_refused_saying_which(store, changes, field):
    assert list(refusal_of(store=store, **changes).details) == [field]
    assert not Endpoint.objects.exists()


def test_an_address_no_try_could_reach_is_refused_when_the_endpoint_is_added(store, settings):
    settings.WEBHOOKS_ALLOWED_NETWORKS = []
    refused = refusal_of(store=store, url="https://127.0.0.1:8443/hooks")

    assert "127.0.0.1 is a loopback address" in refused.message
    assert "WEBHOOKS_ALLOWED_NETWORKS" in refused.message
    assert not Endpoint.objects.exists()

    settings.WEBHOOKS_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    assert endpoint_create(
        store=store,
        url="https://127.0.0.1:8443/hooks",
        event_types=[EventType.POINTS_EARNED],
        include_phone=False,
    )


def test_event_types_are_kept_once_each_in_the_order_they_are_listed(store):
    endpoint = endpoint_create(
        store=store,
        url=f"  {URL} ",
        event_types=["points.redeemed", "member.created", "points.redeemed"],
        include_phone=True,
        description="Web shop",
    )

    assert endpoint.url == URL
    assert endpoint.event_types == ["member.created", "points.redeemed"]
    assert endpoint.secret.startswith("whsec_")


def test_a_rotation_keeps_the_old_secret_valid_for_24_hours_and_only_it(endpoint, staff):
    first = endpoint.secret
    with time_machine.travel("2026-12-03 12:00 +0000", tick=False):
        endpoint_secret_rotate(endpoint=endpoint, staff_user=staff)
    endpoint.refresh_from_db()
    second = endpoint.secret

    assert endpoint.previous_secret == first != second
    assert endpoint.previous_secret_until.isoformat() == "2026-12-04T12:00:00+00:00"

    with time_machine.travel("2026-12-03 13:00 +0000", tick=False):
        rotated = endpoint_secret_rotate(endpoint=endpoint, staff_user=staff)

    assert rotated.previous_secret == second
    assert rotated.previous_secret_until.isoformat() == "2026-12-04T13:00:00+00:00"
    assert LogEntry.objects.filter(object_id=str(endpoint.pk), user=staff).count() == 2


def test_disabling_says_staff_and_enabling_forgets_every_failure(endpoint, staff):
    disabled = endpoint_disable(endpoint=endpoint, staff_user=staff)
    assert (disabled.is_enabled, disabled.disabled_because) == (False, "staff")
    assert disabled.disabled_at is not None

    Endpoint.objects.filter(pk=endpoint.pk).update(
        disabled_because="failing", failing_since=timezone.now() - timedelta(days=4)
    )
    endpoint_enable(endpoint=endpoint, staff_user=staff)

    enabled = Endpoint.objects.get(pk=endpoint.pk)
    assert enabled.is_enabled
    assert (enabled.disabled_because, enabled.disabled_at, enabled.failing_since) == (
        "",
        None,
        None,
    )
    messages = LogEntry.objects.filter(object_id=str(endpoint.pk)).order_by("id")
    assert [entry.change_message for entry in messages] == [
        "Disabled.",
        "Enabled; 0 events it missed while it was disabled will be sent.",
    ]


def emitted(member, event_type: str) -> Event:
    with transaction.atomic():
        event_emit(member_id=member.pk, type=event_type, data={"balance": 0})
    return Event.objects.filter(member=member).latest("id")


def test_enabling_sends_the_events_it_missed_while_disabled_and_only_those(endpoint, staff, store):
    member = MemberFactory()
    before = emitted(member, EventType.POINTS_EARNED)
    events_fan_out()
    Delivery.objects.filter(event=before).update(status=Delivery.Status.DELIVERED)
    endpoint_disable(endpoint=endpoint, staff_user=staff)
    missed = [emitted(member, EventType.POINTS_EARNED) for _ in range(2)]
    emitted(member, EventType.POINTS_EXPIRED)  # not subscribed to
    other = endpoint_create(
        store=store, url=URL, event_types=[EventType.POINTS_EARNED], include_phone=False
    )
    events_fan_out()
    assert not Delivery.objects.filter(endpoint=endpoint, event__in=missed).exists()

    assert endpoint_enable(endpoint=endpoint, staff_user=staff) == 2

    pending = Delivery.objects.filter(endpoint=endpoint, status=Delivery.Status.PENDING)
    assert [d.sequence for d in pending.order_by("sequence")] == [e.sequence for e in missed]
    assert Delivery.objects.filter(endpoint=endpoint, event=before).count() == 1
    assert Delivery.objects.filter(endpoint=other, event__in=missed).count() == 2
    assert endpoint_disable(endpoint=endpoint, staff_user=staff)
    assert endpoint_enable(endpoint=endpoint, staff_user=staff) == 0


def test_a_test_event_goes_to_its_endpoint_alone_once_committed(
    endpoint, staff, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        event = endpoint_test_send(endpoint=endpoint, staff_user=staff)

    assert (event.type, event.member_id, event.sequence) == (TEST_EVENT_TYPE, None, None)
    assert event.only_endpoint_id == endpoint.pk
    assert set(event.data) == {"message"}
    assert callbacks == [deliveries_kick]


def test_a_new_test_event_takes_earlier_ones_waiting_for_a_retry_along(endpoint, staff):
    waiting = failed_delivery(endpoint, status=Delivery.Status.PENDING)
    Delivery.objects.filter(pk=waiting.pk).update(next_try_at=timezone.now() + timedelta(minutes=5))

    endpoint_test_send(endpoint=endpoint, staff_user=staff)

    waiting.refresh_from_db()
    assert waiting.next_try_at <= timezone.now()


def test_no_test_event_is_made_for_a_disabled_endpoint(endpoint, staff):
    endpoint_disable(endpoint=endpoint, staff_user=staff)

    with pytest.raises(AppError) as refused:
        endpoint_test_send(endpoint=endpoint, staff_user=staff)

    assert refused.value.code == "invalid_state"
    assert not Event.objects.exists()


def test_a_resent_delivery_starts_its_schedule_over(
    endpoint, staff, django_capture_on_commit_callbacks
):
    delivery = failed_delivery(endpoint)
    Delivery.objects.filter(pk=delivery.pk).update(leased_until=timezone.now())

    with django_capture_on_commit_callbacks() as callbacks:
        assert delivery_resend(delivery=delivery, staff_user=staff)
    delivery.refresh_from_db()

    assert (delivery.status, delivery.tries, delivery.leased_until, delivery.finished_at) == (
        Delivery.Status.PENDING,
        0,
        None,
        None,
    )
    assert delivery.next_try_at <= timezone.now()
    assert callbacks == [deliveries_kick]


@pytest.mark.parametrize("status", [Delivery.Status.PENDING, Delivery.Status.DELIVERED])
def test_only_a_failed_delivery_is_resent(endpoint, staff, status):
    delivery = failed_delivery(endpoint, status=status)

    assert not delivery_resend(delivery=delivery, staff_user=staff)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.tries) == (status, 10)


def test_resending_since_a_moment_counts_the_endpoints_failures_since_then(endpoint, store, staff):
    since = timezone.now() - timedelta(hours=1)
    other = endpoint_create(
        store=store,
        url="https://other.example.com/hooks",
        event_types=[EventType.POINTS_EARNED],
        include_phone=False,
    )
    earlier = failed_delivery(endpoint, finished_at=since - timedelta(seconds=1))
    resent = [failed_delivery(endpoint, finished_at=since), failed_delivery(endpoint)]
    delivered = failed_delivery(endpoint, status=Delivery.Status.DELIVERED)
    elsewhere = failed_delivery(other)

    count = deliveries_resend_failed(endpoint=endpoint, since=since, staff_user=staff)

    assert count == 2
    pending = Delivery.objects.filter(status=Delivery.Status.PENDING)
    assert sorted(pending.values_list("pk", flat=True)) == [d.pk for d in resent]
    for untouched in (earlier, delivered, elsewhere):
        assert Delivery.objects.get(pk=untouched.pk).status == untouched.status
    assert LogEntry.objects.get(object_id=str(endpoint.pk)).change_message.startswith(
        "Sent again the 2 deliveries that failed since"
    )
