"""Expiry reminders: one SMS per member and expiry date, a few days ahead.

A reminder is claimed by inserting its row, unique per member and expiry
instant, with ON CONFLICT DO NOTHING: only the run whose insert went in sends
the text, so a second run, or two at once, never text a member twice. The
claim and the outbox row commit together; the text goes out after the commit.
"""

from datetime import datetime, timedelta

from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.services import sms_enqueue
from loyalty.models import ExpiryReminder, Program

CHUNK_SIZE = 500

CLAIM = """
    INSERT INTO loyalty_expiryreminder (member_id, expires_at, points, sent_at)
    SELECT lot.member_id, lot.expires_at, SUM(lot.remaining), %s
    FROM loyalty_lot AS lot JOIN loyalty_member AS member ON member.id = lot.member_id
    WHERE lot.member_id BETWEEN %s AND %s AND lot.remaining > 0
      AND lot.expires_at > %s AND lot.expires_at <= %s AND member.phone IS NOT NULL
    GROUP BY lot.member_id, lot.expires_at
    ON CONFLICT (member_id, expires_at) DO NOTHING
    RETURNING id
"""
MEMBERS_WITH_POINTS_EXPIRING = """
    SELECT DISTINCT member_id FROM loyalty_lot
    WHERE remaining > 0 AND expires_at > %s AND expires_at <= %s AND member_id > %s
    ORDER BY member_id LIMIT %s
"""


def expiry_reminders_send(*, now: datetime | None = None, chunk_size: int = CHUNK_SIZE) -> int:
    """Text every member with points expiring within the program's reminder days,
    once per member and expiry date. Returns how many texts were queued."""
    now = now or timezone.now()
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
        with transaction.atomic(durable=True):
            with connection.cursor() as cursor:
                cursor.execute(
                    CLAIM, [_db_datetime(timezone.now()), member_ids[0], member_ids[-1], *window]
                )
                claimed = [row[0] for row in cursor.fetchall()]
            for reminder in ExpiryReminder.objects.filter(pk__in=claimed).select_related("member"):
                sms_enqueue(
                    phone=reminder.member.phone,
                    body=reminder_text(points=reminder.points, expires_at=reminder.expires_at),
                    expires_at=reminder.expires_at,
                )
        queued += len(claimed)


def reminder_text(*, points: int, expires_at: datetime) -> str:
    """The SMS, naming the last valid day in the merchant's time zone."""
    last_valid_day = timezone.localtime(expires_at - timedelta(microseconds=1)).date()
    return _("%(points)d of your points expire after %(date)s. Use them before then.") % {
        "points": points,
        "date": last_valid_day.isoformat(),
    }


def _db_datetime(value: datetime):
    return connection.ops.adapt_datetimefield_value(value)
