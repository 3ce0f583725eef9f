"""The expiry job in a real Celery worker against Redis and the test database:
it runs through the broker, and a worker process killed in the middle of a run
leaves a ledger equal to that of an uninterrupted run once the task is redone."""

import os
import signal
from datetime import timedelta

import psycopg
import pytest
from django.db import connection
from django.utils import timezone

from loyalty.models import LedgerEntry
from loyalty.services.points import credit_many_statement
from tests.expiry_ledger import ledger_after_one_run, ledger_by_member
from tests.invariants import assert_ledger_consistent
from tests.processes import created_test_database_url, start_worker, stop_worker

pytestmark = [
    pytest.mark.services,
    pytest.mark.django_db(transaction=True),
    # conftest makes tasks eager; send_task goes through the broker all the same, as wanted here.
    pytest.mark.filterwarnings("ignore::celery.exceptions.AlwaysEagerIgnored"),
]

MEMBERS = 1500
DUE_LOTS_PER_MEMBER = 5
# Small chunks: the run has many transactions, so there is a middle to kill it in.
CHUNK_SIZE = 20
TASK = "loyalty.tasks.points_expire"


@pytest.fixture
def worker(transactional_db, tmp_path):
    """One Celery worker on a queue of its own, so no other run's tasks reach it and
    a task it leaves unacknowledged is never handed to anyone else."""
    worker = start_worker(tmp_path, EXPIRY_CHUNK_SIZE=str(CHUNK_SIZE))
    try:
        yield worker
    finally:
        stop_worker(worker)


def test_the_worker_runs_the_expiry_job_from_the_broker(worker):
    as_of = seed_ledger()
    expected = ledger_after_one_run(as_of)

    worker.send(TASK)

    worker.wait_until(lambda: "succeeded" in worker.output(), "the job never finished")
    assert ledger_by_member() == expected
    assert_ledger_consistent()


def test_a_worker_killed_mid_run_redoes_the_job_and_the_ledger_is_as_if_uninterrupted(worker):
    as_of = seed_ledger()
    expected = ledger_after_one_run(as_of)
    middle = sorted(expected)[MEMBERS // 2]

    # Another transaction holds a lot of a member halfway through, so the run stops
    # there in the middle of a chunk, with the chunks before it committed.
    blocker = psycopg.connect(created_test_database_url())
    blocker.execute("SELECT id FROM loyalty_lot WHERE member_id = %s FOR UPDATE", [middle])
    try:
        worker.send(TASK)
        worker.wait_until(lambda: waiting_on_a_lock() == 1, "the run never reached the lot")
        done_before_the_kill = expire_entry_count()
        assert 0 < done_before_the_kill < MEMBERS
        os.kill(worker.pool_process(), signal.SIGKILL)
    finally:
        blocker.rollback()
        blocker.close()

    # The worker hands the task back to the broker (acks_late, reject_on_worker_lost)
    # and a new pool process runs it again, after the killed one's transaction rolled back.
    worker.wait_until(lambda: "succeeded" in worker.output(), "the job was never redone")
    assert "SIGKILL" in worker.output()
    assert ledger_by_member() == expected
    assert_ledger_consistent()


def seed_ledger():
    """MEMBERS members, each with DUE_LOTS_PER_MEMBER due lots and one lot expiring
    next month, their earn entries, running sums and balances: set-based, for speed."""
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO loyalty_member (balance, created_at) "
            "SELECT 0, %s FROM generate_series(1, %s)",
            [now, MEMBERS],
        )
        cursor.execute(
            credit_many_statement(
                credits="SELECT member.id AS member_id, k AS seq,"
                " 1 + (member.id * 7 + k * 13) %% 100 AS points,"
                " CASE k WHEN 0 THEN %(later)s ELSE %(due)s END AS expires_at,"
                " 'seed-' || k AS reference"
                " FROM loyalty_member AS member CROSS JOIN generate_series(0, %(due_lots)s) AS k"
            ),
            {
                "due_lots": DUE_LOTS_PER_MEMBER,
                "due": now - timedelta(days=1),
                "later": now + timedelta(days=30),
                "kind": LedgerEntry.Kind.EARN,
                "store_id": None,
                "job": "",
                "now": now - timedelta(days=400),
            },
        )
    return now


def expire_entry_count() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM loyalty_ledgerentry WHERE kind = 'expire'")
        return cursor.fetchone()[0]


def waiting_on_a_lock() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT COUNT(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0]
