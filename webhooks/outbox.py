"""Events are written by the change they tell of, in its transaction: never from a
signal, never before commit. The ORM paths call `event_emit`; the set-based
statements compose `events_emit_ctes` into their one statement.

A member's events are numbered 1, 2, 3, … by `MemberSequence`. The row lock the
numbering takes is held until the change commits, so a later number is always a
later commit, and a receiver may order and deduplicate by it (docs/webhooks.md).
Emit late in a transaction: the lock serialises the member's changes from there on.
"""

import json
import time

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.utils import timezone

from .models import Endpoint

NEW_EVENT_ID_SQL = "'msg_' || replace(gen_random_uuid()::text, '-', '')"

EVENT_INSERT = """
INSERT INTO webhooks_event (webhook_id, type, member_id, sequence, data, fanned_out, created_at)"""

_EMIT_ONE = f"""
WITH sequence AS (
    INSERT INTO webhooks_membersequence (member_id, last) VALUES (%(member_id)s, 1)
    ON CONFLICT (member_id) DO UPDATE SET last = webhooks_membersequence.last + 1
    RETURNING last
)
{EVENT_INSERT}
SELECT {NEW_EVENT_ID_SQL}, %(type)s, %(member_id)s, last, %(data)s::jsonb, false, %(now)s
FROM sequence"""


def event_emit(*, member_id: int, type: str, data: dict, at=None) -> None:
    """Write one event of the member's, numbered next in their sequence, and have it
    sent once the caller's transaction commits."""
    with connection.cursor() as cursor:
        cursor.execute(
            _EMIT_ONE,
            {
                "member_id": member_id,
                "type": type,
                "data": json.dumps(data, cls=DjangoJSONEncoder),
                "now": at or timezone.now(),
            },
        )
    transaction.on_commit(deliveries_kick)


def events_emit_ctes(*, rows: str) -> str:
    """`event_emit` as CTEs of a WITH clause, for many members at once: one event for
    each row of the CTE named `rows`, which gives (member_id, position, type, data
    jsonb). A member's events of the statement are numbered in the order of their
    `position`, after the member's earlier ones; the members' numbers are taken in the
    order of their ids. The statement passes %(now)s. The caller runs
    `transaction.on_commit(deliveries_kick)` after it."""
    # A member's last number is that of their last event here: numbering from the last
    # back needs neither the count of their events nor a second pass.
    return f"""
event_sequence AS (
    INSERT INTO webhooks_membersequence (member_id, last)
    SELECT member_id, COUNT(*) FROM {rows} GROUP BY member_id ORDER BY member_id
    ON CONFLICT (member_id) DO UPDATE SET last = webhooks_membersequence.last + EXCLUDED.last
    RETURNING member_id, last
),
event_written AS (
    {EVENT_INSERT}
    SELECT {NEW_EVENT_ID_SQL}, r.type, r.member_id,
           s.last + 1 - ROW_NUMBER() OVER (PARTITION BY r.member_id ORDER BY r.position DESC),
           r.data, false, %(now)s
    FROM {rows} AS r JOIN event_sequence AS s USING (member_id)
)"""


# Whether any endpoint is enabled, as this process last saw it: without one, a change
# costs no round trip to the broker. The beat's sweep sends whatever a stale answer missed.
_ENABLED_ENDPOINTS_SEEN = {"at": float("-inf"), "any": False}
ENABLED_ENDPOINTS_RECHECK_SECONDS = 10


def deliveries_kick() -> None:
    """Ask the worker to fan out and send the events just committed."""
    if not _any_endpoint_enabled():
        return
    from .tasks import deliveries_send

    deliveries_send.delay()


def _any_endpoint_enabled() -> bool:
    seen = _ENABLED_ENDPOINTS_SEEN
    if time.monotonic() - seen["at"] > ENABLED_ENDPOINTS_RECHECK_SECONDS:
        seen["any"] = Endpoint.objects.filter(is_enabled=True).exists()
        seen["at"] = time.monotonic()
    return seen["any"]
