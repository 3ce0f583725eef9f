"""Staff subscribe a store's endpoint to events, keep its secret, switch it on and off,
test it, and send failed deliveries again; the log shows each delivery's tries."""

from datetime import timedelta

import pytest
import time_machine
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Permission
from django.utils import timezone

from accounts.models import User
from tests.admin import changelist, list_rows, messages_of
from webhooks.models import TEST_EVENT_TYPE, Attempt, Delivery, Endpoint, Event, EventType
from webhooks.outbox import deliveries_kick
from webhooks.services import endpoint_create

pytestmark = pytest.mark.django_db

CHINESE = {"accept-language": "zh-hans"}
URL = "https://shop.example.com/loyalty-hooks"


@pytest.fixture
def superuser(db):
    return User.objects.create_superuser(phone="+8613900000009")


@pytest.fixture
def staff_client(client, superuser):
    client.force_login(superuser)
    return client


@pytest.fixture
def endpoint(store):
    return endpoint_create(
        store=store,
        url=URL,
        event_types=[EventType.POINTS_EARNED, EventType.MEMBER_CREATED],
        include_phone=False,
    )


def endpoint_page(endpoint, action: str = "change") -> str:
    return f"{changelist(Endpoint)}{endpoint.pk}/{action}/"


def add_form(store, **changes) -> dict:
    return {
        "store": store.pk,
        "url": URL,
        "description": "",
        "event_types": [EventType.POINTS_EARNED, EventType.POINTS_REDEEMED],
        **changes,
    }


def delivery_of(endpoint, *, status=Delivery.Status.FAILED, finished_at=None) -> Delivery:
    event = Event.objects.create(type=TEST_EVENT_TYPE, data={}, only_endpoint=endpoint)
    return Delivery.objects.create(
        endpoint=endpoint,
        event=event,
        status=status,
        tries=10,
        finished_at=finished_at or timezone.now(),
    )


def test_an_http_url_is_refused_and_an_https_one_subscribed_to_the_events_ticked(
    staff_client, store, settings
):
    settings.WEBHOOKS_ALLOW_HTTP = False

    refused = staff_client.post(
        f"{changelist(Endpoint)}add/", add_form(store, url="http://shop.example.com/hooks")
    )
    accepted = staff_client.post(f"{changelist(Endpoint)}add/", add_form(store))

    assert "The URL must be an HTTPS address" in refused.content.decode()
    endpoint = Endpoint.objects.get()
    assert endpoint.url == URL
    assert endpoint.event_types == [EventType.POINTS_EARNED, EventType.POINTS_REDEEMED]
    assert accepted.url == endpoint_page(endpoint)


def test_the_add_form_offers_every_event_as_a_checkbox(staff_client):
    html = staff_client.get(f"{changelist(Endpoint)}add/").content.decode()

    for value in EventType.values:
        assert f'type="checkbox" name="event_types" value="{value}"' in html


def test_the_secret_is_shown_once_right_after_the_endpoint_is_created(staff_client, store):
    created = staff_client.post(f"{changelist(Endpoint)}add/", add_form(store), follow=True)
    secret = Endpoint.objects.get().secret
    later = staff_client.get(endpoint_page(Endpoint.objects.get()))

    assert secret in created.content.decode()
    assert secret not in later.content.decode()
    assert "whsec_…" in later.content.decode()


def test_a_rotation_shows_the_new_secret_once_and_keeps_the_old_one_valid_a_day(
    staff_client, endpoint, superuser
):
    old_secret = endpoint.secret

    with time_machine.travel("2026-12-03 12:00 +0000", tick=False):
        rotated = staff_client.post(endpoint_page(endpoint, "rotate"), follow=True)
    later = staff_client.get(endpoint_page(endpoint))

    endpoint.refresh_from_db()
    assert endpoint.secret != old_secret
    assert endpoint.previous_secret == old_secret
    assert endpoint.previous_secret_until.isoformat() == "2026-12-04T12:00:00+00:00"
    assert endpoint.secret in rotated.content.decode()
    assert endpoint.secret not in later.content.decode()
    assert old_secret not in rotated.content.decode() + later.content.decode()
    entry = LogEntry.objects.get(object_id=str(endpoint.pk))
    assert entry.user == superuser
    assert entry.get_change_message().startswith("Rotated the signing secret")


def test_staff_disable_and_enable_an_endpoint_which_starts_afresh(staff_client, endpoint):
    staff_client.post(endpoint_page(endpoint, "disable"))
    endpoint.refresh_from_db()
    listed = list_rows(staff_client.get(changelist(Endpoint)))

    assert not endpoint.is_enabled
    assert endpoint.disabled_because == Endpoint.DisabledBecause.STAFF
    assert listed[0]["state"] == "disabled: switched off by staff"

    Endpoint.objects.filter(pk=endpoint.pk).update(failing_since=timezone.now())
    staff_client.post(endpoint_page(endpoint, "enable"))
    endpoint.refresh_from_db()

    assert endpoint.is_enabled
    assert (endpoint.disabled_because, endpoint.disabled_at, endpoint.failing_since) == (
        "",
        None,
        None,
    )
    assert list_rows(staff_client.get(changelist(Endpoint)))[0]["state"] == "enabled"


def test_a_test_event_is_made_for_that_endpoint_only_and_sent_after_commit(
    staff_client, endpoint, store, django_capture_on_commit_callbacks
):
    other = endpoint_create(
        store=store,
        url="https://other.example.com/hooks",
        event_types=EventType.values,
        include_phone=False,
    )

    with django_capture_on_commit_callbacks() as callbacks:
        response = staff_client.post(endpoint_page(endpoint, "test"), follow=True)

    event = Event.objects.get()
    assert (event.type, event.member, event.sequence) == (TEST_EVENT_TYPE, None, None)
    assert event.only_endpoint == endpoint != other
    assert deliveries_kick in callbacks
    assert messages_of(response) == [
        f"Test event {event.webhook_id} is on its way; its delivery is in the log."
    ]


def test_one_failed_delivery_is_resent_and_a_delivered_one_left_as_it_is(staff_client, endpoint):
    failed = delivery_of(endpoint)
    delivered = delivery_of(endpoint, status=Delivery.Status.DELIVERED)
    Delivery.objects.filter(pk=failed.pk).update(leased_until=timezone.now())

    response = staff_client.post(
        changelist(Delivery),
        {"action": "resend_selected", "_selected_action": [failed.pk, delivered.pk]},
        follow=True,
    )

    failed.refresh_from_db()
    delivered.refresh_from_db()
    assert (failed.status, failed.tries, failed.leased_until, failed.finished_at) == (
        Delivery.Status.PENDING,
        0,
        None,
        None,
    )
    assert (delivered.status, delivered.tries) == (Delivery.Status.DELIVERED, 10)
    assert messages_of(response) == [
        "1 delivery will be sent again from its first try.",
        "1 delivery had not failed and was left as it is: only failed deliveries are sent again.",
    ]


def test_the_resend_button_of_a_failed_delivery_sends_it_again(staff_client, endpoint):
    failed = delivery_of(endpoint)
    page = staff_client.get(f"{changelist(Delivery)}{failed.pk}/change/").content.decode()

    staff_client.post(f"{changelist(Delivery)}{failed.pk}/resend/")

    failed.refresh_from_db()
    assert "Resend from the first try" in page
    assert failed.status == Delivery.Status.PENDING


def test_resending_failed_deliveries_since_a_moment_resends_only_those(
    staff_client, endpoint, store
):
    since = timezone.now() - timedelta(hours=6)
    other = endpoint_create(
        store=store,
        url="https://other.example.com/hooks",
        event_types=EventType.values,
        include_phone=False,
    )
    before = delivery_of(endpoint, finished_at=since - timedelta(minutes=1))
    after = delivery_of(endpoint, finished_at=since + timedelta(minutes=1))
    delivered = delivery_of(
        endpoint, status=Delivery.Status.DELIVERED, finished_at=since + timedelta(minutes=1)
    )
    elsewhere = delivery_of(other, finished_at=since + timedelta(minutes=1))

    response = staff_client.post(
        endpoint_page(endpoint, "resend-failed"),
        {"since": timezone.localtime(since).strftime("%Y-%m-%dT%H:%M:%S")},
        follow=True,
    )

    statuses = dict(Delivery.objects.values_list("pk", "status"))
    assert statuses == {
        before.pk: Delivery.Status.FAILED,
        after.pk: Delivery.Status.PENDING,
        delivered.pk: Delivery.Status.DELIVERED,
        elsewhere.pk: Delivery.Status.FAILED,
    }
    assert messages_of(response) == ["1 failed delivery will be sent again."]


def test_a_moment_to_come_is_refused_for_a_resend(staff_client, endpoint):
    tomorrow = timezone.localtime() + timedelta(days=1)
    response = staff_client.post(
        endpoint_page(endpoint, "resend-failed"), {"since": f"{tomorrow:%Y-%m-%dT%H:%M}"}
    )

    assert "Choose a moment in the past." in response.content.decode()


def test_the_list_and_home_page_tell_staff_of_an_endpoint_the_system_disabled(
    staff_client, endpoint, store
):
    switched_off = endpoint_create(
        store=store,
        url="https://old.example.com/hooks",
        event_types=EventType.values,
        include_phone=False,
    )
    Endpoint.objects.filter(pk=endpoint.pk).update(
        is_enabled=False, disabled_because=Endpoint.DisabledBecause.GONE, disabled_at=timezone.now()
    )
    Endpoint.objects.filter(pk=switched_off.pk).update(
        is_enabled=False, disabled_because=Endpoint.DisabledBecause.STAFF
    )

    for page in (changelist(Endpoint), "/admin/"):
        html = staff_client.get(page).content.decode()

        banner = html[html.index('id="endpoints-stopped"') :].split("</ul>")[0]
        assert f"Nothing is sent to {URL} (Web shop): the system disabled it" in banner
        assert "because the endpoint answered 410 Gone" in banner
        assert "old.example.com" not in banner


def test_no_banner_while_every_endpoint_the_system_runs_is_on(staff_client, endpoint):
    for page in (changelist(Endpoint), "/admin/"):
        assert 'id="endpoints-stopped"' not in staff_client.get(page).content.decode()


def test_the_delivery_page_shows_each_try(staff_client, endpoint):
    delivery = delivery_of(endpoint)
    tries = [(None, "timed out", ""), (503, "", "busy, try later")]
    for minutes, (status_code, error, excerpt) in enumerate(tries):
        Attempt.objects.create(
            delivery=delivery,
            started_at=timezone.now() + timedelta(minutes=minutes),
            duration_ms=15000,
            status_code=status_code,
            error=error,
            response_excerpt=excerpt,
        )

    html = staff_client.get(f"{changelist(Delivery)}{delivery.pk}/change/").content.decode()

    assert "Delivery attempts" in html
    for shown in ("503", "busy, try later", "timed out", "15000"):
        assert shown in html
    assert list_rows(staff_client.get(changelist(Delivery)))[0]["last_http_status"] == "503"


def test_events_and_deliveries_cannot_be_added_changed_or_deleted(staff_client, endpoint):
    delivery = delivery_of(endpoint)

    for model, pk in ((Event, delivery.event_id), (Delivery, delivery.pk)):
        assert staff_client.get(f"{changelist(model)}add/").status_code == 403
        assert staff_client.get(f"{changelist(model)}{pk}/delete/").status_code == 403
        staff_client.post(f"{changelist(model)}{pk}/change/", {"status": "delivered"})
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.FAILED


def test_the_webhook_pages_render_in_chinese(staff_client, endpoint):
    delivery = delivery_of(endpoint)
    urls = [
        changelist(Endpoint),
        f"{changelist(Endpoint)}add/",
        endpoint_page(endpoint),
        endpoint_page(endpoint, "rotate"),
        endpoint_page(endpoint, "resend-failed"),
        changelist(Delivery),
        f"{changelist(Delivery)}{delivery.pk}/change/",
        changelist(Event),
        f"{changelist(Event)}{delivery.event_id}/change/",
    ]

    for url in urls:
        response = staff_client.get(url, headers=CHINESE)
        assert response.status_code == 200, url
        assert "首页" in response.content.decode(), url


def test_staff_who_may_only_view_endpoints_get_no_buttons_and_cannot_act(client, endpoint):
    viewer = User.objects.create_user(phone="+8613900000002", is_staff=True)
    viewer.user_permissions.set(
        Permission.objects.filter(
            content_type__app_label="webhooks",
            codename__in=["view_endpoint", "view_delivery"],
        )
    )
    client.force_login(viewer)
    failed = delivery_of(endpoint)

    page = client.get(endpoint_page(endpoint)).content.decode()
    rotate = client.post(endpoint_page(endpoint, "rotate"))
    resend = client.post(f"{changelist(Delivery)}{failed.pk}/resend/")

    assert "Rotate the signing secret" not in page
    assert (rotate.status_code, resend.status_code) == (403, 403)
    endpoint.refresh_from_db()
    failed.refresh_from_db()
    assert endpoint.previous_secret == ""
    assert failed.status == Delivery.Status.FAILED
