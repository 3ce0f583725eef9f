"""Expiry reminders: one SMS per member and expiry date, a few days ahead.

A reminder is claimed by inserting its row, unique per member and expiry
instant, with ON CONFLICT DO NOTHING: only the run whose insert went in sends
the text, so a second run, or two at once, never text a member twice. The
claim, the outbox row of the text and the `points.expiring` webhook event commit
together; the text goes out after the commit,
and a text whose task never reached the broker (the worker died in between) is
handed over by the minute job of the outbox. A worker killed mid-chunk rolls
back its claims with their texts, and the next run claims them again.

Each chunk locks its members first, the order every path follows, and texts
only those with a phone: an erasure either waits for the chunk and then
deletes its texts with the rest, or goes first and the chunk skips the member.
"""

from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from accounts.sms.delivery import sms_enqueue
from loyalty.models import ExpiryReminder, Member, Program
from webhooks.payloads import points_expiring_emit

CLAIM = """
    INSERT INTO loyalty_expiryreminder (member_id, expires_at, points, sent_at)
    SELECT member_id, expires_at, SUM(remaining), %s
    FROM loyalty_lot
    WHERE member_id IN ({members}) AND remaining > 0 AND expires_at > %s AND expires_at <= %s
    GROUP BY member_id, expires_at
    ON CONFLICT (member_id, expires_at) DO NOTHING
    RETURNING id
"""
MEMBERS_WITH_POINTS_EXPIRING = """
    SELECT DISTINCT member_id FROM loyalty_lot
    WHERE remaining > 0 AND expires_at > %s AND expires_at <= %s AND member_id > %s
    ORDER BY member_id LIMIT %s
"""


def expiry_reminders_send(*, now: datetime | None = None, chunk_size: int | None = None) -> int:
    """Text every member with points expiring within the program's reminder days,
    once per member and expiry date. Returns how many texts were queued."""
    now = now or timezone.now()
    chunk_size = chunk_size or settings.EXPIRY_REMINDER_CHUNK_SIZE
    days = Program.current().reminder_days
    if not days:
        return 0
    window = [_db_datetime(now), _db_datetime(now + timedelta(days=days))]
    queued = 0
    after = 0
    while True:
        with connection.cursor() as cursor:
            cursor.execute(MEMBERS_WITH_POINTS_EXPIRING, [*window, after, chunk_size])
            member_ids = [row[0] for row in cursor.fetchall()]
        if not member_ids:
            return queued
        after = member_ids[-1]
        queued += _remind_chunk(member_ids=member_ids, window=window)


def _remind_chunk(*, member_ids: list[int], window: list) -> int:
    with transaction.atomic(durable=True):
        members = {
            member.pk: member
            for member in Member.objects.select_for_update()
            .filter(pk__in=member_ids, phone__isnull=False)
            .order_by("pk")
            .only("phone", "language", "balance")
        }
        if not members:
            return 0
        claim = CLAIM.format(members=", ".join(["%s"] * len(members)))
        with connection.cursor() as cursor:
            cursor.execute(claim, [_db_datetime(timezone.now()), *members, *window])
            claimed = [row[0] for row in cursor.fetchall()]
        for reminder in ExpiryReminder.objects.filter(pk__in=claimed):
            member = members[reminder.member_id]
            with translation.override(member.text_language):
                body = reminder_text(points=reminder.points, expires_at=reminder.expires_at)
            sms_enqueue(phone=member.phone, body=body, expires_at=reminder.expires_at)
            points_expiring_emit(
                member=member, points=reminder.points, expires_at=reminder.expires_at
            )
    return len(claimed)


def reminder_text(*, points: int, expires_at: datetime) -> str:
    """The SMS, naming the last valid day in the merchant's time zone."""
    last_valid_day = timezone.localtime(expires_at - timedelta(microseconds=1)).date()
    return _("%(points)d of your points expire after %(date)s. Use them before then.") % {
        "points": points,
        "date": last_valid_day.isoformat(),
    }


def _db_datetime(value: datetime):
    return connection.ops.adapt_datetimefield_value(value)
