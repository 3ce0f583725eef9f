"""Endpoints as staff manage them: subscribe a store's URL, rotate its secret, switch
it on and off, send it a test event, and send failed deliveries again
(docs/webhooks.md). Each change staff make is written to the object's history in
admin (Django's LogEntry), as admin's own changes are, naming who made it."""

from datetime import datetime, timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.admin.models import CHANGE, LogEntry
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import transaction
from django.db.models import Model
from django.utils import formats, timezone
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from core.errors import AppError
from loyalty.models import Store

from .delivery import endpoint_catch_up
from .models import TEST_EVENT_TYPE, Delivery, Endpoint, Event, EventType, secret_new
from .outbox import deliveries_kick
from .sender import address_refusal

# How long receivers may still verify with the secret a rotation replaced, while they
# put the new one in place: the sender signs with both until then.
PREVIOUS_SECRET_VALID_FOR = timedelta(hours=24)
TEST_EVENT_MESSAGE = "A test event sent from the loyalty points admin. Nothing changed."


def http_allowed() -> bool:
    """Plain http is for a developer's own machine; the engine's setting, default DEBUG."""
    return getattr(settings, "WEBHOOKS_ALLOW_HTTP", settings.DEBUG)


def url_refusal(url: str) -> str | None:
    """Why an endpoint's URL is refused, or None. The sender checks the address it
    resolves to on every try; this refuses what can never be sent to."""
    schemes = ["https", "http"] if http_allowed() else ["https"]
    try:
        URLValidator(schemes=schemes)(url)
    except ValidationError:
        if url.lower().startswith("http://") and not http_allowed():
            return gettext("The URL must be an HTTPS address: events are sent encrypted only.")
        # Django's own message, in every language it speaks.
        return gettext("Enter a valid URL.")
    refused = address_refusal(urlsplit(url).hostname or "")
    if refused:
        # Caught here, or every try would fail for days before anyone saw why.
        return gettext(
            "%(refusal)s: nothing can be sent there. A private network is reached only "
            "once the operator names it in WEBHOOKS_ALLOWED_NETWORKS."
        ) % {"refusal": refused}
    return None


def event_types_refusal(event_types: list[str]) -> str | None:
    if not event_types:
        return gettext("Choose at least one event to send.")
    unknown = sorted(set(event_types) - set(EventType.values))
    if unknown:
        return gettext("No such events: %(types)s.") % {"types": ", ".join(unknown)}
    return None


def endpoint_create(
    *, store: Store, url: str, event_types: list[str], include_phone: bool, description: str = ""
) -> Endpoint:
    url = url.strip()
    for field, refusal in (
        ("url", url_refusal(url)),
        ("event_types", event_types_refusal(event_types)),
    ):
        if refusal:
            raise AppError("validation_error", refusal, details={field: [refusal]})
    return Endpoint.objects.create(
        store=store,
        url=url,
        # In the order the events are listed, each once: the list reads the same for everyone.
        event_types=[value for value in EventType.values if value in event_types],
        include_phone=include_phone,
        description=description,
    )


def endpoint_secret_rotate(*, endpoint: Endpoint, staff_user) -> Endpoint:
    """A new secret; the one it replaces stays valid for a day. Rotating again within
    that day ends the oldest at once: only two secrets are ever valid."""
    with transaction.atomic():
        endpoint = Endpoint.objects.select_for_update().get(pk=endpoint.pk)
        endpoint.previous_secret = endpoint.secret
        endpoint.previous_secret_until = timezone.now() + PREVIOUS_SECRET_VALID_FOR
        endpoint.secret = secret_new()
        endpoint.save(update_fields=["secret", "previous_secret", "previous_secret_until"])
        _history_write(
            staff_user,
            endpoint,
            gettext("Rotated the signing secret; the previous one is valid until %(until)s.")
            % {"until": _local(endpoint.previous_secret_until)},
        )
    return endpoint


def endpoint_enable(*, endpoint: Endpoint, staff_user) -> int:
    """Switch an endpoint back on, whoever switched it off: it starts afresh, as if it
    had never failed. It is sent what waited, and then the events it missed while it
    was off (those still kept: WEBHOOKS_KEEP_DAYS), each member's in order; returns
    how many it missed."""
    with transaction.atomic():
        endpoint = Endpoint.objects.select_for_update().get(pk=endpoint.pk)
        if endpoint.is_enabled:
            return 0
        missed = endpoint_catch_up(
            endpoint_id=endpoint.pk, since=endpoint.disabled_at or timezone.now()
        )
        endpoint.is_enabled = True
        endpoint.disabled_because, endpoint.disabled_at, endpoint.failing_since = "", None, None
        endpoint.save(
            update_fields=["is_enabled", "disabled_because", "disabled_at", "failing_since"]
        )
        _history_write(
            staff_user,
            endpoint,
            ngettext(
                "Enabled; %(count)d event it missed while it was disabled will be sent.",
                "Enabled; %(count)d events it missed while it was disabled will be sent.",
                missed,
            )
            % {"count": missed},
        )
        transaction.on_commit(deliveries_kick)
    return missed


def endpoint_disable(*, endpoint: Endpoint, staff_user) -> Endpoint:
    with transaction.atomic():
        endpoint = Endpoint.objects.select_for_update().get(pk=endpoint.pk)
        if not endpoint.is_enabled:
            return endpoint
        endpoint.is_enabled = False
        endpoint.disabled_because = Endpoint.DisabledBecause.STAFF
        endpoint.disabled_at = timezone.now()
        endpoint.save(update_fields=["is_enabled", "disabled_because", "disabled_at"])
        _history_write(staff_user, endpoint, gettext("Disabled."))
    return endpoint


def endpoint_test_send(*, endpoint: Endpoint, staff_user) -> Event:
    """An event for this endpoint alone, of no member, whatever it subscribes to."""
    with transaction.atomic():
        # Locked, so that nobody disables it between the check and the event.
        endpoint = Endpoint.objects.select_for_update().get(pk=endpoint.pk)
        if not endpoint.is_enabled:
            # Nothing is sent to a disabled endpoint: the test would wait, unsent, for ever.
            raise AppError(
                "invalid_state",
                _("The endpoint is disabled: enable it first, then send the test."),
            )
        # Staff test now, often right after fixing the receiver: earlier tests still
        # waiting for a retry, ahead of this one in the endpoint's lane, go now too.
        endpoint.deliveries.filter(member_id__isnull=True, status=Delivery.Status.PENDING).update(
            next_try_at=timezone.now()
        )
        event = Event.objects.create(
            type=TEST_EVENT_TYPE,
            member=None,
            sequence=None,
            data={"message": TEST_EVENT_MESSAGE},
            only_endpoint=endpoint,
        )
        _history_write(
            staff_user, endpoint, gettext("Sent test event %(id)s.") % {"id": event.webhook_id}
        )
        transaction.on_commit(deliveries_kick)
    return event


def delivery_resend(*, delivery: Delivery, staff_user) -> bool:
    """Send a failed delivery again, from its first try; False when it had not failed
    (it is still being tried, or it went through)."""
    with transaction.atomic():
        resent = _failed_sent_again(Delivery.objects.filter(pk=delivery.pk))
        if resent:
            _history_write(staff_user, delivery, gettext("Sent again."))
            transaction.on_commit(deliveries_kick)
    return bool(resent)


def deliveries_resend_failed(*, endpoint: Endpoint, since: datetime, staff_user) -> int:
    """Send again the endpoint's deliveries that failed since a moment, e.g. since the
    receiver went down; how many."""
    with transaction.atomic():
        resent = _failed_sent_again(endpoint.deliveries.filter(finished_at__gte=since))
        if resent:
            _history_write(
                staff_user,
                endpoint,
                ngettext(
                    "Sent again the %(count)d delivery that failed since %(since)s.",
                    "Sent again the %(count)d deliveries that failed since %(since)s.",
                    resent,
                )
                % {"count": resent, "since": _local(since)},
            )
            transaction.on_commit(deliveries_kick)
    return resent


def _failed_sent_again(deliveries) -> int:
    """Failed deliveries back to pending, as new: the sender's schedule starts over.
    A resent delivery is its lane's head again, so the member's later events to this
    endpoint wait behind it (docs/webhooks.md: the receiver orders by sequence)."""
    return deliveries.filter(status=Delivery.Status.FAILED).update(
        status=Delivery.Status.PENDING,
        tries=0,
        next_try_at=timezone.now(),
        leased_until=None,
        finished_at=None,
    )


def _history_write(staff_user, obj: Model, message: str) -> None:
    LogEntry.objects.log_actions(
        user_id=staff_user.pk,
        queryset=[obj],
        action_flag=CHANGE,
        change_message=message,
        single_object=True,
    )


def _local(moment: datetime) -> str:
    return formats.localize(timezone.localtime(moment))
