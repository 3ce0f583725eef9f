"""Sending the events: fan-out to deliveries, then lane by lane (docs/webhooks.md).

A lane is one endpoint and one member. Only its head, the lowest sequence still
pending, is sent; what follows waits until the head is delivered or given up, so a
receiver gets each member's events in order. A worker claims a head with a lease in a
short transaction of its own, sends with no transaction open (a try may take the whole
timeout), then records the attempt and its outcome. A worker killed mid-send leaves a
lease that runs out, and the next sweep sends the head again: at least once, never
lost; receivers deduplicate by `webhook-id`.
"""

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone
from standardwebhooks import Webhook

from loyalty.models import Member

from .models import Attempt, Delivery, Endpoint, Event
from .sender import TryResult, endpoint_post

# A try is given up after the 10th; between tries the worker waits these, in order.
RETRY_DELAYS = [
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
    timedelta(hours=14),
    timedelta(hours=20),
    timedelta(hours=24),
]
MAX_TRIES = len(RETRY_DELAYS) + 1
# An endpoint none of whose tries went through for this long is switched off.
FAILING_FOR = timedelta(days=3)
# Events per fan-out transaction.
FAN_OUT_CHUNK_SIZE = 500
# Any fixed number will do: it names the fan-out's advisory lock in PostgreSQL.
FAN_OUT_LOCK_KEY = 18_0001
# How long one lane_send keeps sending a lane's next heads before it lets others go.
LANE_BUDGET_SECONDS = 60
USER_AGENT = "loyalty-points-webhooks"

logger = logging.getLogger(__name__)


def lease_duration() -> timedelta:
    """A claimed head's lease: longer than any try, so it never runs out mid-send."""
    return timedelta(seconds=4 * settings.WEBHOOKS_TIMEOUT_SECONDS)


# --- Fan-out --------------------------------------------------------------------------

_FAN_OUT_CHUNK = """
WITH chunk AS (
    SELECT id, type, member_id, sequence, only_endpoint_id FROM webhooks_event
    WHERE NOT fanned_out ORDER BY id LIMIT %(limit)s
),
marked AS (
    UPDATE webhooks_event SET fanned_out = true FROM chunk WHERE webhooks_event.id = chunk.id
),
created AS (
    INSERT INTO webhooks_delivery
        (endpoint_id, event_id, member_id, sequence, status, tries, next_try_at, created_at)
    SELECT endpoint.id, chunk.id, chunk.member_id, chunk.sequence, 'pending', 0, %(now)s, %(now)s
    FROM chunk JOIN webhooks_endpoint AS endpoint ON endpoint.is_enabled AND CASE
        WHEN chunk.only_endpoint_id IS NOT NULL THEN endpoint.id = chunk.only_endpoint_id
        ELSE chunk.type = ANY(endpoint.event_types) END
    ON CONFLICT ON CONSTRAINT webhook_delivery_once DO NOTHING
)
SELECT count(*) FROM chunk"""


def events_fan_out(*, chunk_size: int = FAN_OUT_CHUNK_SIZE) -> int:
    """Make one pending Delivery per enabled endpoint subscribed to each new event (a
    test event: its one endpoint), in the order of the events; returns how many events.

    One fan-out at a time: another one running already will take what this one would,
    so this one returns at once; the beat's sweep runs again whatever is left over."""
    events = 0
    while True:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [FAN_OUT_LOCK_KEY])
            if not cursor.fetchone()[0]:
                return events
            cursor.execute(_FAN_OUT_CHUNK, {"limit": chunk_size, "now": timezone.now()})
            chunk = cursor.fetchone()[0]
        events += chunk
        if chunk < chunk_size:
            return events


_CATCH_UP = """
INSERT INTO webhooks_delivery
    (endpoint_id, event_id, member_id, sequence, status, tries, next_try_at, created_at)
SELECT endpoint.id, event.id, event.member_id, event.sequence, 'pending', 0, %(now)s, %(now)s
FROM webhooks_event AS event JOIN webhooks_endpoint AS endpoint ON endpoint.id = %(endpoint_id)s
WHERE event.fanned_out AND event.member_id IS NOT NULL
  AND event.created_at >= %(since)s AND event.created_at >= endpoint.created_at
  AND event.type = ANY(endpoint.event_types)
ORDER BY event.id
ON CONFLICT ON CONSTRAINT webhook_delivery_once DO NOTHING"""
# The events of a fan-out that began just before the endpoint was switched off may
# have missed it too: the catch-up looks this far further back (what it finds
# delivered already, it leaves alone).
CATCH_UP_MARGIN = timedelta(minutes=5)


def endpoint_catch_up(*, endpoint_id: int, since: datetime) -> int:
    """Make the deliveries an endpoint missed while it was switched off: each event
    since `since` of a type it subscribes to, fanned out while it was off; returns
    how many. Called in the transaction that switches it back on, so the fan-out,
    which waits for its lock, finds the endpoint on and the catch-up done: a member's
    missed events are their lane's heads, before anything newer."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [FAN_OUT_LOCK_KEY])
        cursor.execute(
            _CATCH_UP,
            {"endpoint_id": endpoint_id, "since": since - CATCH_UP_MARGIN, "now": timezone.now()},
        )
        return cursor.rowcount


# --- The request ----------------------------------------------------------------------


def delivery_body(*, event: Event, endpoint: Endpoint) -> bytes:
    """The JSON a receiver gets, rendered now: the member's phone is today's."""
    member = None
    if event.member_id is not None:
        member = {"id": event.member_id}
        if endpoint.include_phone:
            member["phone"] = (
                Member.objects.filter(pk=event.member_id).values_list("phone", flat=True).first()
            )
    envelope = {"id": event.webhook_id, "sequence": event.sequence, "member": member}
    payload = {
        "type": event.type,
        "timestamp": event.created_at.astimezone(UTC).isoformat(),
        # The envelope's keys come first, and no key of the event's data overrides them.
        "data": envelope | event.data | envelope,
    }
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


def delivery_headers(
    *, endpoint: Endpoint, webhook_id: str, body: bytes, at: datetime
) -> dict[str, str]:
    """Standard Webhooks' headers for one try at `at`, signed with the endpoint's
    secret and, while a rotation's grace lasts, with its previous one too."""
    secrets = [endpoint.secret]
    if (
        endpoint.previous_secret
        and endpoint.previous_secret_until
        and (endpoint.previous_secret_until > at)
    ):
        secrets.append(endpoint.previous_secret)
    signatures = [Webhook(secret).sign(webhook_id, at, body) for secret in secrets]
    return {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "webhook-id": webhook_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": " ".join(signatures),
    }


# --- Lanes ----------------------------------------------------------------------------

_DUE_LANES = """
SELECT endpoint_id, member_id FROM (
    SELECT DISTINCT ON (delivery.endpoint_id, delivery.member_id)
        delivery.endpoint_id, delivery.member_id, delivery.next_try_at, delivery.leased_until
    FROM webhooks_delivery AS delivery
    JOIN webhooks_endpoint AS endpoint ON endpoint.id = delivery.endpoint_id
    WHERE delivery.status = 'pending' AND endpoint.is_enabled
    ORDER BY delivery.endpoint_id, delivery.member_id, delivery.sequence, delivery.id
) AS head
WHERE head.next_try_at <= %(now)s AND (head.leased_until IS NULL OR head.leased_until <= %(now)s)
ORDER BY endpoint_id, member_id"""


def lanes_due(*, now: datetime | None = None) -> list[tuple[int, int | None]]:
    """The (endpoint id, member id) of every lane whose head may be sent now: due,
    not leased (or its lease ran out), its endpoint enabled."""
    with connection.cursor() as cursor:
        cursor.execute(_DUE_LANES, {"now": now or timezone.now()})
        return [tuple(row) for row in cursor.fetchall()]


@dataclass
class LaneRun:
    """What one lane_send did: tries made, and when the head it left pending for a
    retry is due, if it did (None: delivered, given up, or not its turn)."""

    tries: int = 0
    retry_at: datetime | None = None


def lane_send(
    *, endpoint_id: int, member_id: int | None, budget_seconds: float = LANE_BUDGET_SECONDS
) -> LaneRun:
    """Send the lane's head, then its next heads while they are due, for about
    `budget_seconds`. Safe to run twice at once: only one claims a head."""
    run = LaneRun()
    stop_at = timezone.now() + timedelta(seconds=budget_seconds)
    while timezone.now() < stop_at:
        delivery = _head_claim(endpoint_id=endpoint_id, member_id=member_id)
        if delivery is None:
            break
        run.tries += 1
        outcome = _head_send(delivery)
        if outcome.next_try_at is not None:
            run.retry_at = outcome.next_try_at
            break
        if not outcome.endpoint_enabled:
            break
    return run


def _head_claim(*, endpoint_id: int, member_id: int | None) -> Delivery | None:
    """Lease the lane's head if it is due and free; None if it is not."""
    now = timezone.now()
    head = (
        Delivery.objects.filter(
            endpoint_id=endpoint_id,
            member_id=member_id,
            status=Delivery.Status.PENDING,
            endpoint__is_enabled=True,
        )
        .order_by("sequence", "id")
        .select_related("endpoint", "event")
        .first()
    )
    if head is None:
        return None
    # Re-checked by the UPDATE itself: of two workers that read the same head, the
    # second waits for the first's row lock and then finds the lease taken.
    claimed = (
        Delivery.objects.filter(pk=head.pk, status=Delivery.Status.PENDING, next_try_at__lte=now)
        .filter(Q(leased_until__isnull=True) | Q(leased_until__lte=now))
        .update(leased_until=now + lease_duration(), tries=F("tries") + 1)
    )
    if not claimed:
        return None
    head.tries += 1
    return head


@dataclass
class _Outcome:
    next_try_at: datetime | None
    endpoint_enabled: bool


def _head_send(delivery: Delivery) -> _Outcome:
    endpoint, event = delivery.endpoint, delivery.event
    body = delivery_body(event=event, endpoint=endpoint)
    headers = delivery_headers(
        endpoint=endpoint, webhook_id=event.webhook_id, body=body, at=timezone.now()
    )
    result = endpoint_post(url=endpoint.url, body=body, headers=headers)
    return _outcome_record(delivery=delivery, result=result)


def _outcome_record(*, delivery: Delivery, result: TryResult) -> _Outcome:
    """Keep the attempt; then the delivery is delivered, retried, failed, or waits
    for its endpoint to be switched back on."""
    now = timezone.now()
    status = result.status_code
    with transaction.atomic():
        Attempt.objects.create(
            delivery=delivery,
            started_at=result.started_at,
            duration_ms=result.duration_ms,
            status_code=status,
            error=result.error,
            response_excerpt=result.excerpt,
        )
        # Only while this worker's claim stands: a lease that ran out is another's now.
        mine = Delivery.objects.filter(
            pk=delivery.pk, status=Delivery.Status.PENDING, tries=delivery.tries
        )
        endpoints = Endpoint.objects.filter(pk=delivery.endpoint_id)
        if status is not None and 200 <= status < 300:
            mine.update(status=Delivery.Status.DELIVERED, finished_at=now, leased_until=None)
            endpoints.filter(failing_since__isnull=False).update(failing_since=None)
            return _Outcome(next_try_at=None, endpoint_enabled=True)
        endpoints.filter(failing_since__isnull=True).update(failing_since=result.started_at)
        # Said where an operator looks first, not only in the delivery log.
        logger.warning(
            "webhook %s to endpoint %d failed: %s",
            delivery.event.webhook_id,
            delivery.endpoint_id,
            status or result.error,
        )
        if status == 410:
            # The head stays pending: switched back on, the endpoint gets it first.
            mine.update(leased_until=None, next_try_at=now)
            _endpoint_disable(delivery.endpoint_id, Endpoint.DisabledBecause.GONE, now)
            return _Outcome(next_try_at=None, endpoint_enabled=False)
        retryable = status is None or status == 429 or status >= 500
        next_try_at = None
        if retryable and delivery.tries < MAX_TRIES:
            next_try_at = now + RETRY_DELAYS[delivery.tries - 1]
            mine.update(next_try_at=next_try_at, leased_until=None)
        else:
            mine.update(status=Delivery.Status.FAILED, finished_at=now, leased_until=None)
        failing = endpoints.filter(is_enabled=True, failing_since__lt=now - FAILING_FOR).exists()
        if failing:
            _endpoint_disable(delivery.endpoint_id, Endpoint.DisabledBecause.FAILING, now)
            return _Outcome(next_try_at=None, endpoint_enabled=False)
        return _Outcome(next_try_at=next_try_at, endpoint_enabled=True)


def _endpoint_disable(endpoint_id: int, because: str, now: datetime) -> None:
    Endpoint.objects.filter(pk=endpoint_id, is_enabled=True).update(
        is_enabled=False, disabled_because=because, disabled_at=now
    )
