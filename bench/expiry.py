"""Expiry benchmark: the job's speed beside the machine's limit, and its memory.

    .venv/bin/python bench/expiry.py [--lots 1000000 --members 100000]

Creates a scratch database (`loyalty_bench` on the server of DATABASE_URL, by
default the local PostgreSQL), migrates it, and at the full size and at a tenth
of it: seeds the due lots with INSERT ... SELECT, runs the expiry job in a
process of its own (so its peak RSS is its own), seeds again, and runs the
limit: the core's expiry statement, which the job runs per chunk, over all the
members at once, with no chunks and no locks. Prints a table and a one-line summary, and
drops the scratch database unless --keep.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (  # noqa: E402
    DEFAULT_SERVER_URL,
    drop_database,
    progress,
    recreate_database,
    setup_django,
    with_database,
)

# What both runs must leave behind, whatever wrote it.
FINGERPRINT = """
    SELECT
        (SELECT COUNT(*) FROM loyalty_ledgerentry WHERE kind = %(expire)s),
        (SELECT COALESCE(SUM(points), 0) FROM loyalty_ledgerentry WHERE kind = %(expire)s),
        (SELECT COUNT(*) FROM loyalty_allocation),
        (SELECT COALESCE(SUM(remaining), 0) FROM loyalty_lot),
        (SELECT COALESCE(SUM(balance), 0) FROM loyalty_member)
"""


def main() -> int:
    args = parse_args()
    if args.command == "job":
        return job_child(args)
    server_url = args.database_url or os.environ.get("DATABASE_URL") or DEFAULT_SERVER_URL
    scratch_url = with_database(server_url, args.database)
    recreate_database(server_url, args.database)
    os.environ["DATABASE_URL"] = scratch_url
    try:
        setup_django()
        from django.core.management import call_command

        progress("migrating the scratch database")
        call_command("migrate", verbosity=0)
        sizes = [(args.lots // 10, args.members // 10), (args.lots, args.members)]
        rows = [measure(lots, members, args) for lots, members in sizes]
    finally:
        from django.db import connections

        connections.close_all()
        if not args.keep:
            drop_database(server_url, args.database)
    print_table(rows)
    return 0


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", nargs="?", default="bench", choices=["bench", "job"])
    parser.add_argument("--lots", type=int, default=1_000_000, help="due lots at full size")
    parser.add_argument("--members", type=int, default=100_000, help="members at full size")
    parser.add_argument("--database-url", help="the server to use (default DATABASE_URL)")
    parser.add_argument("--database", default="loyalty_bench", help="scratch database name")
    parser.add_argument("--chunk-size", type=int, help="members per chunk of the job")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    parser.add_argument("--check", action="store_true", help="also run the ledger check")
    args = parser.parse_args()
    if args.command == "bench" and (args.members < 10 or args.lots % args.members):
        parser.error("--lots must be a multiple of --members, and --members at least 10")
    return args


def measure(lots: int, members: int, args) -> dict:
    from django.db import connection

    as_of = seed(lots=lots, members=members)
    job = run_job_child(as_of=as_of, chunk_size=args.chunk_size)
    job_result = fingerprint()
    if args.check:
        check_ledger()

    seed(lots=lots, members=members)
    progress(f"running the one-statement limit over {lots:,} lots")
    started = time.monotonic()
    with connection.cursor() as cursor:
        cursor.execute(limit_statement(), limit_parameters(as_of))
    limit_seconds = time.monotonic() - started
    if fingerprint() != job_result:
        raise SystemExit(f"the job and the limit wrote different things: {job_result}")
    if job["lots"] != lots:
        raise SystemExit(f"the job expired {job['lots']:,} lots of {lots:,}")
    return {
        "lots": lots,
        "members": members,
        "job_seconds": job["seconds"],
        "limit_seconds": limit_seconds,
        "peak_rss_kb": job["peak_rss_kb"],
        "rss_growth_kb": job["peak_rss_kb"] - job["baseline_rss_kb"],
    }


def limit_statement() -> str:
    """The core's expiry statement over every member at once: no chunks, no locks."""
    from loyalty.services.points import expire_statement

    return expire_statement(members="TRUE")


def limit_parameters(as_of) -> dict:
    from django.utils import timezone

    from loyalty.models import LedgerEntry

    return {
        "as_of": as_of,
        "kind": LedgerEntry.Kind.EXPIRE,
        "job": "limit",
        "reference": "",
        "now": timezone.now(),
    }


def seed(*, lots: int, members: int):
    """`lots` due lots over `members` members, each lot with its earn entry, the
    balances and running sums right: a ledger the ledger check accepts."""
    from django.db import connection, transaction
    from django.utils import timezone

    from core.postgresql.operations import TRIGGERS_OFF
    from loyalty.models import LedgerEntry
    from loyalty.services.points import credit_many_statement

    as_of = timezone.now()
    per_member = lots // members
    progress(f"seeding {lots:,} due lots over {members:,} members")
    with transaction.atomic(), connection.cursor() as cursor:
        # The ledger refuses TRUNCATE but to a superuser who turns its trigger off.
        cursor.execute(TRIGGERS_OFF)
        cursor.execute(
            "TRUNCATE loyalty_allocation, loyalty_lot, loyalty_ledgerentry, loyalty_member, "
            "webhooks_event, webhooks_membersequence RESTART IDENTITY CASCADE"
        )
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO loyalty_member (phone, balance, created_at) "
            "SELECT '+86139' || lpad(m::text, 8, '0'), 0, %s FROM generate_series(1, %s) AS m",
            [as_of, members],
        )
        cursor.execute(
            credit_many_statement(
                credits="SELECT m AS member_id, k AS seq, 1 + (m * 7 + k * 13) %% 100 AS points,"
                " %(expires_at)s AS expires_at, 'seed' AS reference"
                " FROM generate_series(1, %(members)s) AS m,"
                " generate_series(1, %(per_member)s) AS k"
            ),
            {
                "members": members,
                "per_member": per_member,
                "expires_at": as_of - timedelta(days=1),
                "kind": LedgerEntry.Kind.EARN,
                "store_id": None,
                "job": "",
                "now": as_of - timedelta(days=400),
            },
        )
        cursor.execute("VACUUM ANALYZE")
        cursor.execute("CHECKPOINT")
    return as_of


def run_job_child(*, as_of, chunk_size) -> dict:
    progress("running the expiry job")
    command = [sys.executable, __file__, "job", f"--database-url={os.environ['DATABASE_URL']}"]
    if chunk_size:
        command.append(f"--chunk-size={chunk_size}")
    env = {**os.environ, "BENCH_AS_OF": as_of.isoformat()}
    result = subprocess.run(command, env=env, stdout=subprocess.PIPE, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def job_child(args) -> int:
    """The job alone in this process: prints its figures as one JSON line."""
    from datetime import datetime

    os.environ["DATABASE_URL"] = args.database_url
    setup_django()
    from loyalty.services.expiry_job import points_expire

    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    run = points_expire(
        as_of=datetime.fromisoformat(os.environ["BENCH_AS_OF"]),
        chunk_size=args.chunk_size,
        on_chunk=lambda run: progress(f"  {run.lots:,} lots expired", transient=True),
    )
    if sys.stderr.isatty():
        sys.stderr.write("\n")
    figures = {
        "lots": run.lots,
        "seconds": run.seconds,
        "baseline_rss_kb": baseline,
        "peak_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    }
    print(json.dumps(figures))
    return 0


def fingerprint() -> tuple:
    from django.db import connection

    from loyalty.models import LedgerEntry

    with connection.cursor() as cursor:
        cursor.execute(FINGERPRINT, {"expire": LedgerEntry.Kind.EXPIRE})
        return cursor.fetchone()


def check_ledger() -> None:
    from loyalty.services.ledger_check import ledger_breaches

    progress("checking the ledger")
    breaches = list(ledger_breaches())
    if breaches:
        raise SystemExit(f"the ledger check found {len(breaches)} breaches: {breaches[:5]}")


def print_table(rows: list[dict]) -> None:
    header = (
        "| lots | members | job s | job lots/s | limit s | limit lots/s | job/limit "
        "| job peak RSS | job RSS growth |"
    )
    print(header)
    print("|---" * 9 + "|")
    for row in rows:
        job_rate = row["lots"] / row["job_seconds"]
        limit_rate = row["lots"] / row["limit_seconds"]
        print(
            f"| {row['lots']:,} | {row['members']:,} | {row['job_seconds']:.2f} "
            f"| {job_rate:,.0f} | {row['limit_seconds']:.2f} | {limit_rate:,.0f} "
            f"| {job_rate / limit_rate:.2f} | {row['peak_rss_kb'] / 1024:.0f} MB "
            f"| {row['rss_growth_kb'] / 1024:.1f} MB |"
        )
    small, full = rows
    print(
        f"expiry job: {full['lots'] / full['job_seconds']:,.0f} lots/s, "
        f"{full['limit_seconds'] / full['job_seconds']:.2f} of the one-statement limit; "
        f"peak RSS {full['peak_rss_kb'] / 1024:.0f} MB at {full['lots']:,} lots, "
        f"{small['peak_rss_kb'] / 1024:.0f} MB at {small['lots']:,}"
    )


if __name__ == "__main__":
    sys.exit(main())
