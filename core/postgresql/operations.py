"""Django's PostgreSQL operations, with a flush that may empty the append-only ledger.

The ledger refuses TRUNCATE (loyalty/migrations/0008_ledger_refuses_truncate.py), and
Django's flush is one TRUNCATE of every table. Under `session_replication_role =
replica` PostgreSQL fires no ordinary trigger, and only a superuser may set it: so the
test suite, which runs as one, still empties its database between tests, and
`manage.py flush` by the application's own role is refused with the ledger intact.
"""

from django.db.backends.postgresql import operations

# SET LOCAL lasts to the end of the transaction the flush runs in (Django's
# execute_sql_flush opens one); setting it back keeps the triggers for whatever the same
# transaction does after the flush.
TRIGGERS_OFF = "SET LOCAL session_replication_role = replica;"
TRIGGERS_ON = "SET LOCAL session_replication_role = origin;"


class DatabaseOperations(operations.DatabaseOperations):
    def sql_flush(self, style, tables, *, reset_sequences=False, allow_cascade=False):
        statements = super().sql_flush(
            style, tables, reset_sequences=reset_sequences, allow_cascade=allow_cascade
        )
        if not statements:
            return statements
        return [TRIGGERS_OFF, *statements, TRIGGERS_ON]
