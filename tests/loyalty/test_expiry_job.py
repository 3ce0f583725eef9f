"""The expiry job: due lots empty into one `expire` entry per member and run,
nothing expires twice, and it keeps out of the way of redemptions."""

import os
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta
from io import StringIO
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings as django_settings
from django.core.management import call_command
from django.db import connection, connections, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from core.errors import AppError
from loyalty.models import Allocation, LedgerEntry, Lot, Member
from loyalty.services import expiry_job as expiry
from loyalty.services.expiry_job import points_expire
from loyalty.services.points import Cause, credit, debit, member_lock
from tests.beat import beat_started_at
from tests.concurrency import run_together
from tests.factories import MemberFactory
from tests.invariants import assert_ledger_consistent
from tests.processes import created_test_database_url

NOW = timezone.now()
DUE = NOW - timedelta(days=2)
DUE_EARLIER = NOW - timedelta(days=30)
FUTURE = NOW + timedelta(days=30)
CAUSE = Cause(reference="test")


def give(member, points, expires_at):
    with transaction.atomic():
        return credit(
            member=member_lock(member.pk),
            kind=LedgerEntry.Kind.EARN,
            points=points,
            expires_at=expires_at,
            cause=CAUSE,
        )


def spend(member, points, kind=LedgerEntry.Kind.REDEEM, allow_debt=False):
    with transaction.atomic():
        return debit(
            member=member_lock(member.pk),
            kind=kind,
            points=points,
            cause=CAUSE,
            allow_debt=allow_debt,
        )


def balance(member):
    return Member.objects.get(pk=member.pk).balance


def expire_entries(member):
    return list(LedgerEntry.objects.filter(member=member, kind=LedgerEntry.Kind.EXPIRE))


def remaining(entry):
    return Lot.objects.get(entry=entry).remaining


@pytest.mark.django_db
def test_due_lots_expire_into_one_entry_per_member_and_the_rest_stays():
    member = MemberFactory()
    early = give(member, 100, DUE_EARLIER)
    late = give(member, 50, DUE)
    future = give(member, 70, FUTURE)
    never = give(member, 20, None)
    spend(member, 30)  # takes 30 from the soonest-expiring lot

    run = points_expire(as_of=NOW)

    assert (run.lots, run.members, run.points, run.members_skipped) == (2, 1, 120, 0)
    [entry] = expire_entries(member)
    assert (entry.points, entry.balance_after) == (-120, 90)
    assert balance(member) == 90
    assert [remaining(e) for e in (early, late, future, never)] == [0, 0, 70, 20]
    allocations = {a.lot.entry_id: a.points for a in Allocation.objects.filter(entry=entry)}
    assert allocations == {early.pk: 70, late.pk: 50}
    assert_ledger_consistent()


@pytest.mark.django_db
def test_the_expire_entry_says_which_job_and_run_wrote_it(settings):
    settings.TIME_ZONE = "Asia/Shanghai"
    member = MemberFactory()
    give(member, 100, DUE)
    as_of = NOW.replace(microsecond=0)

    points_expire(as_of=as_of)

    [entry] = expire_entries(member)
    assert entry.job == "expire_points"
    assert entry.reference == as_of.astimezone(ZoneInfo("Asia/Shanghai")).isoformat()
    assert (entry.store, entry.staff_user, entry.reason) == (None, None, "")
    assert NOW - timedelta(seconds=5) < entry.created_at <= timezone.now()


@pytest.mark.django_db
def test_a_second_run_expires_nothing():
    member = MemberFactory()
    give(member, 100, DUE)
    points_expire(as_of=NOW)

    again = points_expire(as_of=timezone.now())

    assert (again.lots, again.members, again.points) == (0, 0, 0)
    assert len(expire_entries(member)) == 1
    assert balance(member) == 0
    assert_ledger_consistent()


@pytest.mark.django_db
def test_a_lot_expires_at_its_instant_not_a_moment_before():
    member = MemberFactory()
    give(member, 100, DUE)

    assert points_expire(as_of=DUE - timedelta(microseconds=1)).lots == 0
    assert points_expire(as_of=DUE).lots == 1
    assert balance(member) == 0


@pytest.mark.django_db
def test_a_member_in_debt_has_nothing_to_expire():
    member = MemberFactory()
    give(member, 100, DUE)
    spend(member, 100)
    spend(member, 40, kind=LedgerEntry.Kind.EARN_REVERSAL, allow_debt=True)

    run = points_expire(as_of=NOW)

    assert run.members == 0
    assert balance(member) == -40
    assert_ledger_consistent()


@pytest.mark.django_db
def test_many_members_in_small_chunks_come_out_as_in_one(settings):
    members = [MemberFactory() for _ in range(7)]
    for i, member in enumerate(members):
        give(member, 10 + i, DUE)
        give(member, 5, FUTURE)
    progress = []

    run = points_expire(
        as_of=NOW, chunk_size=3, on_chunk=lambda r: progress.append((r.chunks, r.members))
    )

    assert progress == [(1, 3), (2, 6), (3, 7)]
    assert (run.lots, run.members, run.points) == (7, 7, sum(10 + i for i in range(7)))
    assert [balance(m) for m in members] == [5] * 7
    assert_ledger_consistent()


@pytest.mark.django_db
def test_points_never_expire_ahead_of_time():
    with pytest.raises(ValueError, match="ahead of time"):
        points_expire(as_of=timezone.now() + timedelta(minutes=1))


@pytest.mark.django_db
def test_the_command_expires_and_ends_with_a_one_line_summary(settings):
    settings.TIME_ZONE = "Asia/Shanghai"
    member = MemberFactory()
    give(member, 100, NOW - timedelta(days=400))
    give(member, 40, DUE)
    out = StringIO()

    # A naive --as-of is the merchant's local time; the first lot only was due then.
    as_of = timezone.localtime(NOW - timedelta(days=100)).replace(tzinfo=None)
    call_command("expire_points", f"--as-of={as_of.isoformat()}", stdout=out, stderr=StringIO())

    assert out.getvalue().startswith("expired 1 lots (100 points) of 1 members, 0 members skipped")
    assert balance(member) == 40
    call_command("expire_points", stdout=out, stderr=StringIO())
    assert balance(member) == 0


@pytest.mark.django_db
def test_members_are_locked_before_their_lots_are_written():
    member = MemberFactory()
    give(member, 100, DUE)

    with CaptureQueriesContext(connection) as queries:
        points_expire(as_of=NOW)

    statements = [q["sql"] for q in queries.captured_queries]
    lock = next(i for i, sql in enumerate(statements) if "FOR UPDATE SKIP LOCKED" in sql)
    write = next(i for i, sql in enumerate(statements) if "UPDATE loyalty_lot" in sql)
    assert lock < write


# --- Against other transactions: real threads on PostgreSQL ---------------------------


def in_thread(target):
    """Run `target` on its own thread and database connection; join() returns its result."""
    outcome = {}

    def run():
        try:
            outcome["result"] = target()
        except Exception as error:  # handed to the test, which asserts on it
            outcome["result"] = error
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()

    def join(timeout=30):
        thread.join(timeout)
        assert not thread.is_alive(), "the thread is stuck: a deadlock?"
        return outcome["result"]

    return join


@pytest.mark.services
@pytest.mark.django_db
def test_beat_expires_the_due_points_at_the_set_time_and_only_then():
    midnight = datetime(2026, 7, 7, tzinfo=ZoneInfo("Asia/Shanghai"))
    run_at = midnight.replace(
        hour=django_settings.EXPIRY_RUN_HOUR, minute=django_settings.EXPIRY_RUN_MINUTE
    )

    with beat_started_at(midnight - timedelta(hours=1)) as beat:
        member = MemberFactory()
        give(member, 100, midnight)
        give(member, 50, midnight + timedelta(days=30))

        # due at midnight, yet left alone until the job's time
        beat.run_until(run_at - timedelta(seconds=1))
        assert balance(member) == 150

        beat.run_until(run_at + timedelta(hours=1))
        assert beat.sent.count("loyalty.tasks.points_expire") == 1

    assert balance(member) == 50
    [entry] = expire_entries(member)
    assert run_at <= entry.created_at < run_at + timedelta(minutes=1)  # beat woke each minute
    assert_ledger_consistent()


@pytest.mark.django_db(transaction=True)
def test_a_member_locked_by_a_redemption_is_skipped_and_expired_by_the_next_run():
    busy, idle = MemberFactory(), MemberFactory()
    for member in (busy, idle):
        give(member, 200, DUE)
        give(member, 100, FUTURE)
    redeeming, expiry_done = threading.Event(), threading.Event()

    def redeem_slowly():
        with transaction.atomic():
            entry = debit(
                member=member_lock(busy.pk),
                kind=LedgerEntry.Kind.REDEEM,
                points=150,
                cause=CAUSE,
            )
            redeeming.set()
            expiry_done.wait(10)
            return entry

    redemption = in_thread(redeem_slowly)
    assert redeeming.wait(10)
    first = points_expire(as_of=NOW)
    expiry_done.set()
    redemption()

    assert (first.members, first.members_skipped, first.points) == (1, 1, 200)
    assert balance(idle) == 100
    assert balance(busy) == 150  # 300 - 150 redeemed, nothing expired yet

    second = points_expire(as_of=NOW)

    assert (second.members, second.members_skipped, second.points) == (1, 0, 50)
    assert balance(busy) == 100  # the redemption took the soonest-expiring points first
    assert_ledger_consistent()


@pytest.mark.django_db(transaction=True)
def test_a_redemption_waits_for_the_expiry_chunk_holding_its_member_then_sees_its_result():
    member = MemberFactory()
    due = give(member, 200, DUE)
    give(member, 100, FUTURE)

    # Hold one of the member's due lots, so the job stops inside its chunk with the member locked.
    blocker = connections.create_connection("default")
    blocker.set_autocommit(False)
    with blocker.cursor() as cursor:
        cursor.execute("SELECT id FROM loyalty_lot WHERE entry_id = %s FOR UPDATE", [due.pk])
    job = in_thread(lambda: points_expire(as_of=NOW))
    wait_for_lock_waits(1)
    redemption = in_thread(lambda: spend(member, 150))
    wait_for_lock_waits(2)
    blocker.rollback()
    blocker.close()

    run, refused = job(), redemption()

    assert run.points == 200
    assert isinstance(refused, AppError) and refused.code == "insufficient_points"
    assert balance(member) == 100
    assert_ledger_consistent()


@pytest.mark.django_db(transaction=True)
def test_expiry_racing_many_redemptions_loses_no_point_and_never_deadlocks():
    members = [MemberFactory() for _ in range(12)]
    for member in members:
        give(member, 100, DUE_EARLIER)
        give(member, 100, DUE)
        give(member, 100, FUTURE)

    def expire():
        runs = [points_expire(as_of=NOW, chunk_size=2)]
        while runs[-1].members_skipped:
            runs.append(points_expire(as_of=NOW, chunk_size=2))
        return runs

    *redemptions, runs = run_together([*(lambda m=m: spend(m, 120) for m in members), expire])

    # Each member's 300 points are now exactly: redeemed + expired + balance.
    for member, redemption in zip(members, redemptions, strict=True):
        redeemed = 120 if isinstance(redemption, LedgerEntry) else 0
        expired = -sum(e.points for e in expire_entries(member))
        # Redeemed first: from the soonest-expiring lots, then the rest of the due ones
        # expired. Expired first: the due points are gone and 120 is more than is left.
        assert (redeemed, expired, balance(member)) in {(120, 80, 100), (0, 200, 100)}
    assert sum(run.points for run in runs) == sum(
        -sum(e.points for e in expire_entries(m)) for m in members
    )
    assert_ledger_consistent()


@pytest.mark.django_db(transaction=True)
def test_two_runs_at_once_expire_everything_once():
    members = [MemberFactory() for _ in range(20)]
    for member in members:
        give(member, 100, DUE)

    runs = run_together([lambda: points_expire(as_of=NOW, chunk_size=3)] * 2)

    assert sorted(r.members for r in runs) == [0, 20]
    assert all(len(expire_entries(m)) == 1 for m in members)
    assert_ledger_consistent()


@pytest.mark.django_db(transaction=True)
def test_a_run_gives_up_when_another_holds_the_job_lock_too_long(monkeypatch):
    member = MemberFactory()
    give(member, 100, DUE)
    monkeypatch.setattr(expiry, "JOB_LOCK_WAIT_SECONDS", 0.3)
    holder = connections.create_connection("default")
    with holder.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(%s)", [expiry.JOB_LOCK_KEY])

    try:
        run = points_expire(as_of=NOW)
    finally:
        holder.close()

    assert not run.ran
    assert balance(member) == 100
    assert points_expire(as_of=NOW).points == 100


def wait_for_lock_waits(count, timeout=10):
    """Until `count` backends of this database wait on a row lock."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
            if cursor.fetchone()[0] >= count:
                return
        time.sleep(0.05)
    pytest.fail(f"fewer than {count} transactions ever waited on a lock")


@pytest.mark.django_db
def test_the_expiry_benchmark_runs_and_the_job_writes_what_the_limit_statement_writes():
    # At a tiny size, so the script cannot rot; it fails if the two ledgers differ.
    result = subprocess.run(
        [
            *(sys.executable, "bench/expiry.py", "--lots=2000", "--members=200", "--check"),
            f"--database-url={created_test_database_url()}",
            f"--database=loyalty_bench_smoke_{os.getpid()}",
        ],
        cwd=django_settings.BASE_DIR,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stderr
    assert "| 2,000 | 200 |" in result.stdout
    assert "of the one-statement limit" in result.stdout.splitlines()[-1]
