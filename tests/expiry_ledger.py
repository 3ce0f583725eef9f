"""What the expiry job leaves per member, for the tests that run it in a real worker
(and kill that worker): the ledger read back, and what one uninterrupted run leaves."""

from django.db import connection


def ledger_after_one_run(now) -> dict:
    """Per member, what one uninterrupted run leaves: (balance, points expired, expire
    entries, lots emptied by them, points left in lots). Every lot starts full."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT member_id, "
            "  SUM(points) FILTER (WHERE expires_at > %s), "
            "  SUM(points) FILTER (WHERE expires_at <= %s), "
            "  COUNT(*) FILTER (WHERE expires_at <= %s) "
            "FROM loyalty_lot GROUP BY member_id",
            [now, now, now],
        )
        return {
            member: (kept, -due, 1, due_lots, kept)
            for member, kept, due, due_lots in cursor.fetchall()
        }


def ledger_by_member() -> dict:
    """Per member, what the ledger says, in the shape of `ledger_after_one_run`."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT member.id, member.balance,
                (SELECT SUM(points) FROM loyalty_ledgerentry
                 WHERE member_id = member.id AND kind = 'expire'),
                (SELECT COUNT(*) FROM loyalty_ledgerentry
                 WHERE member_id = member.id AND kind = 'expire'),
                (SELECT COUNT(*) FROM loyalty_allocation AS allocation
                 JOIN loyalty_ledgerentry AS entry ON entry.id = allocation.entry_id
                 WHERE entry.member_id = member.id AND entry.kind = 'expire'),
                (SELECT SUM(remaining) FROM loyalty_lot WHERE member_id = member.id)
            FROM loyalty_member AS member
            """
        )
        return {member: tuple(figures) for member, *figures in cursor.fetchall()}
