"""Old events go: every change writes one, so the outbox would otherwise grow with the
ledger. An event is kept `WEBHOOKS_KEEP_DAYS` days, and longer while any of its
deliveries is pending; its deliveries and their attempts go with it. The ledger,
not the outbox, is the record of what happened to points."""

from datetime import datetime, timedelta

from django.db import connection

CHUNK = 1000

# One statement per chunk: the event, its deliveries and their attempts (Django's
# CASCADE is the ORM's, not the database's, so the statement names each table).
_DELETE_CHUNK = """
WITH doomed AS (
    SELECT e.id FROM webhooks_event AS e
    WHERE e.created_at < %(before)s AND e.fanned_out
      AND NOT EXISTS (
          SELECT 1 FROM webhooks_delivery AS d
          WHERE d.event_id = e.id AND d.status = 'pending'
      )
    ORDER BY e.id
    LIMIT %(chunk)s
),
attempts_gone AS (
    DELETE FROM webhooks_attempt WHERE delivery_id IN (
        SELECT d.id FROM webhooks_delivery AS d JOIN doomed ON d.event_id = doomed.id
    )
),
deliveries_gone AS (
    DELETE FROM webhooks_delivery WHERE event_id IN (SELECT id FROM doomed)
)
DELETE FROM webhooks_event WHERE id IN (SELECT id FROM doomed)"""


def events_prune(*, now: datetime, keep_days: int) -> int:
    """Delete the events older than `keep_days` that nothing waits to send, a chunk
    per short transaction; returns how many."""
    before = now - timedelta(days=keep_days)
    deleted = 0
    while True:
        with connection.cursor() as cursor:
            cursor.execute(_DELETE_CHUNK, {"before": before, "chunk": CHUNK})
            deleted += cursor.rowcount
            if cursor.rowcount < CHUNK:
                return deleted
