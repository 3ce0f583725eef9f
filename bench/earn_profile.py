"""Where an earn's time goes, in one process: its statements and its Python.

    .venv/bin/python bench/earn_profile.py [--requests 2000] [--modes flat lines rules]

Creates a scratch database (`loyalty_bench_profile` on the server of DATABASE_URL, by
default the local PostgreSQL), seeds it as `make bench` does, at a tenth of the size,
adds a history of earns with 20-line baskets, and then posts earns through Django's
whole request handling in this process, one after the other, as a gunicorn worker
would handle them: `flat` without a basket while no earning rule is on, `lines` with
20-line baskets, `rules` with the same baskets under the ten rules of `make bench`
(bench/seed.py). For each it prints the wall time of an earn and each kind of
statement it ran, with their round trips' time; what is left is the Python. For the
last mode it also prints the functions the time went to (cProfile, which slows the
Python, so its shares, not its milliseconds, are the point). For a flame graph of
the same requests, without cProfile's:

    py-spy record --idle -o flame.svg -- .venv/bin/python bench/earn_profile.py --no-cprofile
"""

import argparse
import cProfile
import os
import pstats
import random
import re
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (  # noqa: E402
    DEFAULT_SERVER_URL,
    ROOT,
    drop_database,
    progress,
    recreate_database,
    setup_django,
    with_database,
)

MODES = ("flat", "lines", "rules")
# The shop of bench/wrk/earn.lua: its SKUs, each of one category.
SKUS = 400
CATEGORIES = ("coffee", "beans", "bakery", "dairy", "snacks", "drinks", "household", "tobacco")
BASKET_LINES = 20
# A statement named by its verb and the table it works on; savepoints by their verb.
TABLE = re.compile(r'\b(?:FROM|INTO|UPDATE)\s+"?(\w+)"?', re.IGNORECASE)
SAVEPOINT = re.compile(r"^\s*((?:RELEASE |ROLLBACK TO )?SAVEPOINT)", re.IGNORECASE)


def main() -> int:
    args = parse_args()
    server_url = args.database_url or os.environ.get("DATABASE_URL") or DEFAULT_SERVER_URL
    recreate_database(server_url, args.database)
    os.environ.update(DATABASE_URL=with_database(server_url, args.database), LOG_LEVEL="WARNING")
    try:
        setup_django()
        profile(args)
    finally:
        from django.db import connections

        connections.close_all()
        if not args.keep:
            drop_database(server_url, args.database)
    return 0


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000, help="measured earns per mode")
    parser.add_argument(
        "--history",
        type=int,
        default=2000,
        help="earns with lines at the flat rate before any mode: a shop's purchases so far",
    )
    parser.add_argument(
        "--warm-up",
        type=int,
        default=200,
        help="earns before each mode's measured ones: statements prepared, caches filled",
    )
    parser.add_argument("--members", type=int, default=10_000)
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    parser.add_argument("--database-url", help="the server to use (default DATABASE_URL)")
    parser.add_argument("--database", default="loyalty_bench_profile")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    parser.add_argument("--no-cprofile", action="store_true", help="skip the cProfile run")
    parser.add_argument(
        "--profile-file",
        type=Path,
        default=ROOT / "bench" / "results" / "latest" / "earn-rules.prof",
        help="where the last mode's cProfile statistics go",
    )
    return parser.parse_args()


def profile(args) -> None:
    from django.core.management import call_command
    from django.test import Client
    from django.utils import timezone

    from bench import seed as seeding

    progress("migrating the scratch database")
    call_command("migrate", verbosity=0)
    seeded = seeding.seed(members=args.members, customers_per_group=1, now=timezone.now())
    client = Client(SERVER_NAME="127.0.0.1", HTTP_AUTHORIZATION=f"Api-Key {seeded.store_key}")
    earns = Earns(client, seeded.members)
    progress(f"history: {args.history} earns with lines")
    earns.post(args.history, lines=BASKET_LINES)
    analyze_as_autovacuum_would()
    for mode in args.modes:
        if mode == "rules":
            seeding.seed_earning_rules(store_id=seeded.store_id, now=timezone.now())
        lines = 0 if mode == "flat" else BASKET_LINES
        earns.post(args.warm_up, lines=lines)
        progress(f"{mode}: {args.requests} earns")
        timed = earns.timed(args.requests, lines=lines)
        print_mode(mode, timed, args.requests)
    if args.no_cprofile:
        return
    progress(f"{args.modes[-1]}: {args.requests} earns under cProfile")
    profiler = cProfile.Profile()
    profiler.runcall(earns.post, args.requests, lines=lines)
    args.profile_file.parent.mkdir(parents=True, exist_ok=True)
    profiler.dump_stats(args.profile_file)
    print_functions(pstats.Stats(profiler), args.profile_file)


def analyze_as_autovacuum_would() -> None:
    """Statistics for the tables the history filled, and a new session to plan with
    them. A session keeps the plans of the foreign key checks it first made: made on an
    empty table, or on a server without autovacuum (a CI machine's) that keeps the
    statistics of an empty table, each check of a line's purchase or of a part's line
    reads its whole table, and the commit slows as the tables grow."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    connection.close()


class Earns:
    """New orders of random members, posted one after the other."""

    def __init__(self, client, members: int):
        self.client = client
        self.members = members
        self.orders = 0

    def post(self, count: int, *, lines: int) -> None:
        from bench.seed import phone_of

        for _request in range(count):
            self.orders += 1
            phone = phone_of(random.randint(1, self.members))
            body = {"phone": phone, "order_id": f"P{self.orders}"}
            body.update(basket(lines) if lines else {"amount": "123.45"})
            response = self.client.post("/api/v1/purchases", body, content_type="application/json")
            if response.status_code != 201:
                raise SystemExit(f"an earn answered {response.status_code}: {response.content}")

    def timed(self, count: int, *, lines: int) -> dict:
        """The wall time of `count` earns, and of each kind of statement they ran."""
        from django.db import connection

        statements = Statements()
        commit = connection._commit
        connection._commit = statements.timing("COMMIT", commit)
        started = time.perf_counter()
        try:
            with connection.execute_wrapper(statements):
                self.post(count, lines=lines)
        finally:
            connection._commit = commit
        return {"seconds": time.perf_counter() - started, "statements": statements.by_label}


def basket(count: int) -> dict:
    """As bench/wrk/earn.lua makes them: 1 to 3 of an item at 1.00 to 20.00 a line."""
    lines, total = [], 0
    for index in range(1, count + 1):
        sku = random.randint(1, SKUS)
        quantity = random.randint(1, 3)
        cents = quantity * random.randint(100, 2000)
        total += cents
        lines.append(
            {
                "line_id": str(index),
                "sku": f"SKU-{sku}",
                "category": CATEGORIES[sku % len(CATEGORIES)],
                "quantity": quantity,
                "amount": money(cents),
            }
        )
    return {"amount": money(total), "lines": lines}


def money(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


class Statements:
    """An execute wrapper: how many statements of each kind ran, and their wall time,
    which is the round trip and the database's work. A transaction's BEGIN goes in the
    time of its first statement (psycopg sends it first); its COMMIT is timed apart."""

    def __init__(self):
        self.by_label: dict[str, list] = defaultdict(lambda: [0, 0.0])

    def __call__(self, execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.count(label_of(sql), time.perf_counter() - started)

    def timing(self, label: str, function):
        def timed(*args, **kwargs):
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.count(label, time.perf_counter() - started)

        return timed

    def count(self, label: str, seconds: float) -> None:
        self.by_label[label][0] += 1
        self.by_label[label][1] += seconds


def label_of(sql: str) -> str:
    if savepoint := SAVEPOINT.match(sql):
        return savepoint[1].upper()
    verb = sql.split(None, 1)[0].upper()
    table = TABLE.search(sql)
    return f"{verb} {table[1] if table else ''}".strip()


def print_mode(mode: str, timed: dict, requests: int) -> None:
    per_request = 1000 * timed["seconds"] / requests
    rows = timed["statements"]
    statements = sum(count for count, _seconds in rows.values()) / requests
    sql = 1000 * sum(seconds for _count, seconds in rows.values()) / requests
    print(
        f"\n{mode}: {per_request:.2f} ms an earn; {statements:.1f} statements and commits, "
        f"{sql:.2f} ms ({sql / per_request:.0%}); the rest, Python: {per_request - sql:.2f} ms "
        f"({1 - sql / per_request:.0%})"
    )
    print("| statement | per earn | ms per earn | share of the earn |")
    print("|---|---:|---:|---:|")
    for label, (count, seconds) in sorted(rows.items(), key=lambda row: -row[1][1]):
        ms = 1000 * seconds / requests
        print(f"| {label} | {count / requests:.2f} | {ms:.3f} | {ms / per_request:.1%} |")


# The functions whose cumulative time says where an earn's Python goes.
FUNCTIONS = re.compile(
    r"purchase_record|_earned_row|rules_in_force|earn_parameters|promotions_parameters"
    r"|\bearning\b|_run_earn_statement|is_valid|_record|respond_once|get_response"
    r"|execute|_dealt|_commit"
)


def print_functions(stats: pstats.Stats, path: Path) -> None:
    total = stats.total_tt
    rows = []
    for (filename, line, name), (
        _calls,
        primitive,
        _tottime,
        cumulative,
        _callers,
    ) in stats.stats.items():
        if FUNCTIONS.search(name) and cumulative / total >= 0.01:
            where = f"{Path(filename).parent.name}/{Path(filename).name}:{line}"
            rows.append((cumulative, name, where, primitive))
    print(f"\nunder cProfile ({path}); time in a function and what it calls, of the whole:")
    print("| function | where | calls | share |")
    print("|---|---|---:|---:|")
    for cumulative, name, where, calls in sorted(rows, reverse=True):
        print(f"| {name} | {where} | {calls:,} | {cumulative / total:.1%} |")


if __name__ == "__main__":
    sys.exit(main())
