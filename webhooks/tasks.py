"""The webhooks' Celery tasks: thin, idempotent, safe to run twice or at once."""

import logging

from celery import shared_task
from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from . import delivery, retention

logger = logging.getLogger(__name__)

# The beat's sweep runs deliveries_send this often (config/celery.py); a retry due
# sooner than that gets a task of its own, counted down to it.
SWEEP_SECONDS = 30
# A lane has one lane_send waiting in the queue at most: each commit kicks a
# deliveries_send, and without this a backlog would queue one task per lane per kick.
# Past this, a task still queued (a long backlog) may be joined by a second.
LANE_QUEUED_SECONDS = 300


def _lane_queued_key(endpoint_id: int, member_id: int | None) -> str:
    return f"webhooks:lane-queued:{endpoint_id}:{member_id}"


@shared_task(name="webhooks.tasks.deliveries_send")
def deliveries_send() -> int:
    """After each commit that wrote events, and every SWEEP_SECONDS from beat: fan the
    new events out, then queue one lane_send per lane whose head is due; returns how
    many lanes. One task per lane, so one slow endpoint holds up only its own lanes."""
    delivery.events_fan_out()
    lanes = delivery.lanes_due()
    for endpoint_id, member_id in lanes:
        if cache.add(_lane_queued_key(endpoint_id, member_id), 1, LANE_QUEUED_SECONDS):
            lane_send.delay(endpoint_id, member_id)
    return len(lanes)


@shared_task(name="webhooks.tasks.lane_send")
def lane_send(endpoint_id: int, member_id: int | None) -> int:
    """Send one lane's due heads in order; returns how many tries it made."""
    # From here a new event of the lane's may queue another task: this one may have
    # looked at the lane already.
    cache.delete(_lane_queued_key(endpoint_id, member_id))
    run = delivery.lane_send(endpoint_id=endpoint_id, member_id=member_id)
    if run.retry_at is not None:
        wait = (run.retry_at - timezone.now()).total_seconds()
        if wait < SWEEP_SECONDS:
            transaction.on_commit(
                lambda: lane_send.apply_async((endpoint_id, member_id), countdown=max(wait, 0))
            )
    logger.info("webhook lane %s/%s: %d tries", endpoint_id, member_id, run.tries)
    return run.tries


@shared_task(name="webhooks.tasks.events_prune")
def events_prune() -> int:
    """Daily: delete the events, deliveries and tries older than WEBHOOKS_KEEP_DAYS
    that nothing waits to send; returns how many events."""
    pruned = retention.events_prune(now=timezone.now(), keep_days=settings.WEBHOOKS_KEEP_DAYS)
    logger.info("webhook events pruned: %d", pruned)
    return pruned
