"""The expiry job: points past their expiry date leave the members' balances.

It works through the members with due lots in chunks, each chunk one short
transaction of a few set-based statements, so a run over millions of lots holds
little memory and no Python loop walks the lots. Per chunk it locks the members
first (skipping any that another transaction holds right now: the next run
takes them), then empties their due lots, and writes one `expire` entry per
member with an allocation per emptied lot, the new balance, and the entry's
`points.expired` webhook event.

Idempotent by construction: an emptied lot is not due any more, and a crash
rolls back only the chunk in flight. A session advisory lock keeps two runs
from working at the same time; it dies with the connection, so a worker killed
mid-run does not block the run that replaces it.

The writes are the core's set-based expiry (`points.expire_statement`), which
writes exactly what a `debit` of every due point would: one member at a time
would make a run over a million lots a million round trips.
"""

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from loyalty.models import LedgerEntry
from webhooks.outbox import deliveries_kick

from .points import expire_statement, fetch_named

JOB = "expire_points"
# An arbitrary constant: the advisory lock key of the expiry job on this database.
JOB_LOCK_KEY = 7_201_911_437
# A second run waits this long for the first before giving up: long enough for the
# connection of a killed worker to close, short enough not to pile up beat runs.
JOB_LOCK_WAIT_SECONDS = 60
JOB_LOCK_POLL_SECONDS = 0.2


@dataclass
class ExpiryRun:
    """What one run did; `ran` is False when another run held the job lock."""

    as_of: datetime
    ran: bool = True
    lots: int = 0
    members: int = 0
    points: int = 0
    members_skipped: int = 0
    chunks: int = 0
    seconds: float = 0.0

    def summary(self) -> str:
        if not self.ran:
            return _("another expiry run holds the job lock; nothing done")
        return _(
            "expired %(lots)s lots (%(points)s points) of %(members)s members, "
            "%(skipped)s members skipped (locked, left for the next run), in %(seconds)ss"
        ) % {
            "lots": f"{self.lots:,}",
            "points": f"{self.points:,}",
            "members": f"{self.members:,}",
            "skipped": f"{self.members_skipped:,}",
            "seconds": f"{self.seconds:.1f}",
        }


@dataclass(frozen=True)
class _Chunk:
    lots: int
    members: int
    points: int
    skipped: int


def points_expire(
    *,
    as_of: datetime,
    chunk_size: int | None = None,
    on_chunk: Callable[[ExpiryRun], None] | None = None,
) -> ExpiryRun:
    """Expire every lot with points left whose expiry is at or before `as_of`.

    `on_chunk(run)` is called after each chunk with the totals so far.
    """
    if as_of > timezone.now():
        raise ValueError(f"points never expire ahead of time: {as_of} is in the future")
    chunk_size = chunk_size or settings.EXPIRY_CHUNK_SIZE
    started = time.monotonic()
    run = ExpiryRun(as_of=as_of)
    with _job_lock() as acquired:
        if not acquired:
            run.ran = False
            return run
        reference = timezone.localtime(as_of).isoformat(timespec="seconds")
        for member_ids in _due_member_chunks(as_of=as_of, size=chunk_size):
            chunk = _expire_chunk(member_ids=member_ids, as_of=as_of, reference=reference)
            run.lots += chunk.lots
            run.members += chunk.members
            run.points += chunk.points
            run.members_skipped += chunk.skipped
            run.chunks += 1
            run.seconds = time.monotonic() - started
            if on_chunk:
                on_chunk(run)
    run.seconds = time.monotonic() - started
    return run


def _due_member_chunks(*, as_of: datetime, size: int) -> Iterator[list[int]]:
    """Ids of members with due lots, ascending, `size` at a time (keyset pagination)."""
    query = """
        SELECT DISTINCT member_id FROM loyalty_lot
        WHERE remaining > 0 AND expires_at <= %s AND member_id > %s
        ORDER BY member_id LIMIT %s
    """
    after = 0
    while True:
        with connection.cursor() as cursor:
            cursor.execute(query, [as_of, after, size])
            member_ids = [row[0] for row in cursor.fetchall()]
        if not member_ids:
            return
        yield member_ids
        after = member_ids[-1]


# Members are locked first, skipping those held by a redemption or another run;
# their lots are locked next, by the core's statement that empties them.
LOCK_MEMBERS = """
    SELECT id FROM loyalty_member WHERE id = ANY(%s) ORDER BY id FOR UPDATE SKIP LOCKED
"""
EXPIRE_CHUNK = expire_statement(members="member_id = ANY(%(member_ids)s)")


def _expire_chunk(*, member_ids: list[int], as_of: datetime, reference: str) -> _Chunk:
    with transaction.atomic(durable=True), connection.cursor() as cursor:
        cursor.execute(LOCK_MEMBERS, [member_ids])
        locked = [row[0] for row in cursor.fetchall()]
        expired = {"lots": 0, "members": 0, "points": 0}
        if locked:
            cursor.execute(
                EXPIRE_CHUNK,
                {
                    "member_ids": locked,
                    "as_of": as_of,
                    "kind": LedgerEntry.Kind.EXPIRE,
                    "job": JOB,
                    "reference": reference,
                    "now": timezone.now(),
                },
            )
            expired = fetch_named(cursor)
            transaction.on_commit(deliveries_kick)
    return _Chunk(
        lots=expired["lots"],
        members=expired["members"],
        points=expired["points"],
        skipped=len(member_ids) - len(locked),
    )


@contextmanager
def _job_lock() -> Iterator[bool]:
    """Yield whether this run may work: a session advisory lock, for which a second
    run waits up to JOB_LOCK_WAIT_SECONDS."""
    acquired = _advisory_lock_within(JOB_LOCK_WAIT_SECONDS)
    try:
        yield acquired
    finally:
        if acquired:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [JOB_LOCK_KEY])


def _advisory_lock_within(seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    with connection.cursor() as cursor:
        while True:
            cursor.execute("SELECT pg_try_advisory_lock(%s)", [JOB_LOCK_KEY])
            if cursor.fetchone()[0]:
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(JOB_LOCK_POLL_SECONDS)
