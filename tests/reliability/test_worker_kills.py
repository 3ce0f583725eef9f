"""Fault injection: the worker running the expiry job, or the reminder job, is killed
with SIGKILL twenty times at random points of the run, and the job is run again.

The ledger must come out exactly as one uninterrupted run leaves it, and every
member must get exactly one text per expiry date: none lost, none twice.

The kill points come from a seed, random unless LOYALTY_FAULT_SEED gives one; a
failure names it. Each test takes about 15 s on two cores."""

import json
import os
import random
import time
from collections import Counter
from datetime import timedelta

import pytest
import redis
import time_machine
from django.db import connection
from django.utils import timezone

from accounts.models import SmsMessage
from accounts.sms.delivery import sms_stranded_ids
from config.celery import app as celery_app
from loyalty.models import ExpiryReminder, LedgerEntry, Program
from loyalty.services.points import credit_many_statement
from loyalty.services.reminders import reminder_text
from tests.expiry_ledger import ledger_after_one_run, ledger_by_member
from tests.invariants import assert_ledger_consistent
from tests.processes import Worker, broker_url, start_worker, stop_worker

pytestmark = [
    pytest.mark.services,
    pytest.mark.django_db(transaction=True),
    # conftest makes tasks eager; send_task goes through the broker all the same, as wanted here.
    pytest.mark.filterwarnings("ignore::celery.exceptions.AlwaysEagerIgnored"),
]

KILLS = 20
# What the worker's main process logs, once, when its pool process died under a task.
TASK_LOST = "Task handler raised error: WorkerLostError"
SEED = int(os.environ.get("LOYALTY_FAULT_SEED") or random.SystemRandom().randrange(10**6))
EXPIRE_TASK = "loyalty.tasks.points_expire"
REMIND_TASK = "loyalty.tasks.expiry_reminders_send"
DELIVER_TASK = "accounts.tasks.sms_deliver"
TEXTS_QUEUE = celery_app.conf.task_default_queue
SMS_FILE = "sms.jsonl"

# Expiry: many small chunks, so that twenty kills land in the middle of the run.
EXPIRY_MEMBERS = 1200
DUE_LOTS_PER_MEMBER = 4
EXPIRY_CHUNK = 4
EXPIRY_KILL_STEP = 40

# Reminders: every member has points expiring in 3 days, every third also in 5 days.
REMINDER_MEMBERS = 300
REMINDER_CHUNK = 2
REMINDER_KILL_STEP = 6


@pytest.fixture
def worker(transactional_db, tmp_path):
    """A worker whose texts go to a file in tmp_path, one JSON line per text sent."""
    # pytest shows what a test printed when it fails, however it fails.
    print(f"kill points from LOYALTY_FAULT_SEED={SEED}")
    purge_texts_queue()
    worker = start_worker(
        tmp_path,
        EXPIRY_CHUNK_SIZE=str(EXPIRY_CHUNK),
        EXPIRY_REMINDER_CHUNK_SIZE=str(REMINDER_CHUNK),
        SMS_BACKEND="file",
        SMS_FILE_PATH=str(tmp_path / SMS_FILE),
    )
    try:
        yield worker
    finally:
        stop_worker(worker)
        purge_texts_queue()


def test_expiry_killed_twenty_times_then_rerun_leaves_the_ledger_of_one_uninterrupted_run(
    worker,
):
    now = seed_due_lots()
    expected_members, expected_lots = ledger_after_one_run(now), lots_after_one_run(now)

    worker.send(EXPIRE_TASK)
    kill_rounds(worker, rounds=KILLS, progress=expire_entries, step=EXPIRY_KILL_STEP, seed=SEED)
    worker.wait_until(lambda: worker.count("succeeded") == 1, "the killed run never finished")
    worker.send(EXPIRE_TASK)
    worker.wait_until(lambda: worker.count("succeeded") == 2, "the rerun never finished")

    assert ledger_by_member() == expected_members, f"seed {SEED}"
    assert lots_by_id() == expected_lots, f"seed {SEED}"
    assert_ledger_consistent()


def test_reminders_killed_twenty_times_then_rerun_text_each_member_once_per_date(worker, tmp_path):
    expected = seed_expiring_lots()

    worker.send(REMIND_TASK)
    kill_rounds(
        worker,
        rounds=KILLS,
        progress=ExpiryReminder.objects.count,
        step=REMINDER_KILL_STEP,
        seed=SEED,
    )
    worker.wait_until(lambda: worker.count("succeeded") == 1, "the killed run never finished")
    worker.send(REMIND_TASK)
    worker.wait_until(lambda: worker.count("succeeded") == 2, "the rerun never finished")

    # Every claim has its text in the outbox, and nothing else is there.
    assert ExpiryReminder.objects.count() == len(expected), f"seed {SEED}"
    assert SmsMessage.objects.count() == len(expected), f"seed {SEED}"

    # The texts the runs queued go out. A text whose task a kill kept from the broker
    # (between the commit and the queueing) is handed over by the outbox's minute job,
    # as beat runs it, once the text is a minute old. (A text handed over twice is sent
    # once: the second task finds it sent.)
    worker.also_consume(TEXTS_QUEUE)
    worker.wait_until(
        lambda: broker_idle([worker.queue, TEXTS_QUEUE]), "the texts were never delivered"
    )
    with time_machine.travel(timezone.now() + timedelta(minutes=2)):
        stranded = sms_stranded_ids()
    for message_id in stranded:
        worker.send(DELIVER_TASK, message_id)
    unsent = SmsMessage.objects.exclude(status=SmsMessage.Status.SENT)
    worker.wait_until(lambda: not unsent.exists(), "the stranded texts were never delivered")

    assert texts_sent(tmp_path / SMS_FILE) == Counter(expected), f"seed {SEED}"


def seed_due_lots():
    """EXPIRY_MEMBERS members, each with DUE_LOTS_PER_MEMBER lots due yesterday and one
    due next month, with their earn entries and balances: set-based, for speed."""
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO loyalty_member (phone, balance, created_at) "
            "SELECT '+86139' || lpad(n::text, 8, '0'), 0, %s FROM generate_series(1, %s) AS n",
            [now, EXPIRY_MEMBERS],
        )
        seed_earned_lots(
            cursor,
            lots=DUE_LOTS_PER_MEMBER + 1,
            expiry="CASE WHEN k = 0 THEN %(later)s ELSE %(due)s END",
            params={"due": now - timedelta(days=1), "later": now + timedelta(days=30)},
        )
    return now


def seed_expiring_lots() -> list[tuple[str, str]]:
    """REMINDER_MEMBERS members with points expiring within the reminder days (on one
    date or two) and some beyond them; returns the texts they must get, (phone, body)."""
    program = Program.current()
    program.reminder_days = 7
    program.save()
    now = timezone.now()
    soon, later, beyond = (now + timedelta(days=days) for days in (3, 5, 30))
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO loyalty_member (phone, balance, created_at) "
            "SELECT '+86138' || lpad(n::text, 8, '0'), 0, %s FROM generate_series(1, %s) AS n",
            [now, REMINDER_MEMBERS],
        )
        seed_earned_lots(
            cursor,
            lots=3,
            expiry=(
                "CASE WHEN k = 0 THEN %(soon)s "
                "WHEN k = 1 AND member.id %% 3 = 0 THEN %(later)s ELSE %(beyond)s END"
            ),
            params={"soon": soon, "later": later, "beyond": beyond},
        )
        cursor.execute(
            "SELECT member.phone, lot.expires_at, SUM(lot.remaining) "
            "FROM loyalty_lot AS lot JOIN loyalty_member AS member ON member.id = lot.member_id "
            "WHERE lot.expires_at < %s GROUP BY member.phone, lot.expires_at",
            [beyond],
        )
        return [
            (phone, reminder_text(points=points, expires_at=expires_at))
            for phone, expires_at, points in cursor.fetchall()
        ]


def seed_earned_lots(cursor, *, lots: int, expiry: str, params: dict) -> None:
    """`lots` earn entries and lots per member, numbered k = 0 … lots - 1 and expiring
    as the SQL expression `expiry` (of k and member.id) says, credited by the core."""
    cursor.execute(
        credit_many_statement(
            credits="SELECT member.id AS member_id, k AS seq,"
            " 1 + (member.id * 7 + k * 13) %% 100 AS points,"
            f" {expiry} AS expires_at, 'seed-' || k AS reference"
            " FROM loyalty_member AS member CROSS JOIN generate_series(0, %(last)s) AS k"
        ),
        {
            **params,
            "last": lots - 1,
            "kind": LedgerEntry.Kind.EARN,
            "store_id": None,
            "job": "",
            "now": timezone.now() - timedelta(days=300),
        },
    )


def lots_after_one_run(now) -> dict:
    """Per lot, what is left after one run: nothing of the due lots, all of the rest."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT lot.id, CASE WHEN lot.expires_at <= %s THEN 0 ELSE lot.points END "
            "FROM loyalty_lot AS lot",
            [now],
        )
        return dict(cursor.fetchall())


def lots_by_id() -> dict:
    with connection.cursor() as cursor:
        cursor.execute("SELECT id, remaining FROM loyalty_lot")
        return dict(cursor.fetchall())


def expire_entries() -> int:
    return LedgerEntry.objects.filter(kind=LedgerEntry.Kind.EXPIRE).count()


def texts_sent(sms_file) -> Counter:
    lines = sms_file.read_text(encoding="utf-8").splitlines() if sms_file.exists() else []
    return Counter((text["to"], text["body"]) for text in map(json.loads, lines))


def purge_texts_queue() -> None:
    """Texts an earlier run left in the test Redis would be delivered here too."""
    with celery_app.connection_for_write(broker_url()) as broker:
        broker.default_channel.queue_purge(TEXTS_QUEUE)


def broker_idle(queues: list[str]) -> bool:
    """No task waits in `queues` and none taken from them is still out with a worker
    (kombu keeps those in the `unacked` hash as [message, exchange, routing key])."""
    client = redis.Redis.from_url(broker_url())
    waiting = sum(client.llen(queue) for queue in queues)
    out = [json.loads(entry)[2] for entry in client.hvals("unacked")]
    return waiting == 0 and not set(out) & set(queues)


def kill_rounds(worker: Worker, *, rounds: int, progress, step: int, seed: int) -> None:
    """Kill the pool process `rounds` times while it runs a job, each time at a random
    point: a random number (1 to `step`) of the job's units of work after the last
    kill, then a random pause of up to 20 ms (about a chunk), so the kill lands anywhere
    in a chunk: reading the next chunk, locking, writing, committing, queueing texts.

    `progress()` counts the units the job has committed so far. Every kill must cost
    the job its task (the worker logs it lost): a kill between two tasks proves nothing."""
    rng = random.Random(seed)
    for kill in range(rounds):
        target = progress() + rng.randint(1, step)
        worker.wait_until(
            lambda target=target: progress() >= target,
            f"seed {seed}, kill {kill + 1}: the job never got to {target}",
        )
        time.sleep(rng.uniform(0, 0.02))
        worker.kill_pool_process()
        worker.wait_until(
            lambda kill=kill: worker.count(TASK_LOST) > kill,
            f"seed {seed}, kill {kill + 1} did not cost the job its task",
        )
