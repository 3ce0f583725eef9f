"""Django's PostgreSQL backend with a connection health check that costs no round trip,
and a flush that may empty the append-only ledger only as a superuser (operations.py).

Django checks a kept connection before a request's first query by running `SELECT 1`:
a round trip on every request, which on the hot paths costs as much as their own
query. An idle connection has nothing to read, so anything waiting on its socket, data
or end-of-file, means the server has ended the session (a restart, an idle timeout,
pg_terminate_backend) and said so. Looking costs one poll() and no round trip. A peer
that vanished without a word (a cut network) is found by the request's own query, as a
slow `SELECT 1` would have found it.
"""

import select

from django.db.backends.postgresql import base
from psycopg.pq import TransactionStatus

from .operations import DatabaseOperations

# Where `SELECT 1` would fail: a query still running, an aborted transaction, a lost link.
UNUSABLE_STATES = {TransactionStatus.ACTIVE, TransactionStatus.INERROR, TransactionStatus.UNKNOWN}


class DatabaseWrapper(base.DatabaseWrapper):
    ops_class = DatabaseOperations

    def is_usable(self):
        if self.connection is None or self.connection.closed:
            return False
        if self.connection.info.transaction_status in UNUSABLE_STATES:
            return False
        readiness = select.poll()
        readiness.register(self.connection.fileno(), select.POLLIN | select.POLLPRI)
        return not readiness.poll(0)
