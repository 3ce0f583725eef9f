"""Does an auth endpoint's timing tell which phones are registered?

    .venv/bin/python bench/auth_timing.py [--pairs 50]

The attack it repeats: interleaved requests for a registered customer's phone and
an unknown one (and a staff phone), timed from outside, through gunicorn with the
production settings. For each flow it prints the median time of each kind of
phone and in how many of the pairs the registered phone was the slower: about
half means the timing tells nothing. tests/accounts/test_equal_work.py holds the
code to doing the same SQL and tasks for every phone; this shows the result.

It creates the scratch database `loyalty_auth_bench` on the server of DATABASE_URL
(by default the local PostgreSQL) and uses Redis database 9 of REDIS_URL's server
(by default the local Redis) as cache and broker; both are emptied at the end. The
sending caps are lifted for the run: they would refuse the repeated requests.
"""

import argparse
import http.client
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (  # noqa: E402
    DEFAULT_SERVER_URL,
    ROOT,
    drop_database,
    progress,
    recreate_database,
    with_database,
)

DATABASE = "loyalty_auth_bench"
PORT = 8766
CUSTOMER = "+8613800138000"
UNKNOWN = "+8613900139000"
STAFF = "+8613700137000"
PASSWORD = "a long passphrase 2026"
FLOWS = {
    "reset code": (
        "/api/v1/auth/sms-codes",
        lambda phone: {"phone": phone, "purpose": "password_reset"},
    ),
    "sign-up code": ("/api/v1/auth/sms-codes", lambda phone: {"phone": phone, "purpose": "signup"}),
    "login, wrong password": (
        "/api/v1/auth/token",
        lambda phone: {"phone": phone, "password": "not it"},
    ),
    "reset, wrong code": (
        "/api/v1/auth/password-reset",
        lambda phone: {"phone": phone, "code": "000000", "new_password": "another passphrase 2026"},
    ),
}
LIFTED_CAPS = {
    name: "1000000"
    for name in (
        "SMS_CAP_PER_PHONE_PER_MINUTE",
        "SMS_CAP_PER_PHONE_PER_HOUR",
        "SMS_CAP_PER_IP_PER_HOUR",
        "SMS_CAP_PER_NETWORK_PER_HOUR",
        "SMS_CAP_PER_NUMBER_PREFIX_PER_HOUR",
        "SMS_CAP_TOTAL_PER_HOUR",
        "SMS_CODE_WRONG_GUESSES_PER_PHONE_PER_HOUR",
        "LOGIN_FAILURES_PER_PHONE_AND_IP",
        "LOGIN_FAILURES_PER_IP",
        "LOGIN_FAILURES_PER_PHONE_BEFORE_DELAY",
    )
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=50, help="interleaved pairs per flow (50)")
    args = parser.parse_args()
    server_url = os.environ.get("DATABASE_URL") or DEFAULT_SERVER_URL
    redis_url = redis_database(os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0", 9)
    env = {
        **os.environ,
        **LIFTED_CAPS,
        "DATABASE_URL": with_database(server_url, DATABASE),
        "REDIS_URL": redis_url,
        "CELERY_BROKER_URL": redis_url,
        "LOG_LEVEL": "WARNING",
        "DJANGO_DEBUG": "0",
    }
    recreate_database(server_url, DATABASE)
    try:
        prepare(env)
        with running_service(env):
            rows = [measure(name, *FLOWS[name], pairs=args.pairs) for name in FLOWS]
    finally:
        drop_database(server_url, DATABASE)
        flush_redis(redis_url)
    print_table(rows, pairs=args.pairs)
    return 0


def redis_database(url: str, number: int) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{number}"))


def prepare(env: dict) -> None:
    progress("migrating and creating a customer and a staff member")
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "--no-input", "-v", "0"], cwd=ROOT, env=env, check=True)
    script = (
        "from accounts.models import User;"
        f"User.objects.create_user(phone={CUSTOMER!r}, password={PASSWORD!r});"
        f"User.objects.create_user(phone={STAFF!r}, password={PASSWORD!r}, is_staff=True)"
    )
    subprocess.run([*manage, "shell", "-v", "0", "-c", script], cwd=ROOT, env=env, check=True)


class running_service:  # noqa: N801 - used as a context manager, like open()
    """gunicorn as in production, and a Celery worker deciding the code requests."""

    def __init__(self, env: dict):
        self.env = env

    def __enter__(self):
        progress("starting gunicorn and a Celery worker")
        bin_dir = Path(sys.executable).parent
        commands = [
            [str(bin_dir / "gunicorn"), "config.wsgi", f"--bind=127.0.0.1:{PORT}"],
            [str(bin_dir / "celery"), "-A", "config", "worker", "--pool=solo", "-l", "WARNING"],
        ]
        self.processes = [
            subprocess.Popen(
                command,
                cwd=ROOT,
                env=self.env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for command in commands
        ]
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                post("/healthz", None)
                return self
            except OSError:
                time.sleep(0.2)
        raise SystemExit("gunicorn did not answer within 30 s")

    def __exit__(self, *exc):
        for process in self.processes:
            process.send_signal(signal.SIGTERM)
        for process in self.processes:
            process.wait(timeout=30)


def post(path: str, body: dict | None) -> tuple[int, float]:
    """The status and the seconds from sending the request to reading the whole answer."""
    connection = http.client.HTTPConnection("127.0.0.1", PORT, timeout=10)
    connection.connect()
    payload = json.dumps(body).encode() if body is not None else None
    started = time.perf_counter()
    connection.request(
        "POST" if body is not None else "GET",
        path,
        body=payload,
        headers={"Content-Type": "application/json", "Host": "localhost"},
    )
    response = connection.getresponse()
    response.read()
    elapsed = time.perf_counter() - started
    connection.close()
    return response.status, elapsed


def measure(name: str, path: str, body, *, pairs: int) -> dict:
    progress(f"{name}: {pairs} interleaved rounds", transient=True)
    times = {CUSTOMER: [], UNKNOWN: [], STAFF: []}
    statuses = set()
    for round_number in range(pairs):
        # Who goes first alternates, so that warming up favours nobody.
        order = [CUSTOMER, UNKNOWN, STAFF] if round_number % 2 else [UNKNOWN, STAFF, CUSTOMER]
        for phone in order:
            status, elapsed = post(path, body(phone))
            statuses.add(status)
            times[phone].append(elapsed)
    customer_slower = sum(k > u for k, u in zip(times[CUSTOMER], times[UNKNOWN], strict=True))
    return {
        "flow": name,
        "statuses": sorted(statuses),
        "registered ms": statistics.median(times[CUSTOMER]) * 1000,
        "unknown ms": statistics.median(times[UNKNOWN]) * 1000,
        "staff ms": statistics.median(times[STAFF]) * 1000,
        "registered slower": customer_slower,
    }


def flush_redis(url: str) -> None:
    import redis

    redis.Redis.from_url(url).flushdb()


def print_table(rows: list[dict], *, pairs: int) -> None:
    print()
    print(
        "| flow | answers | registered p50 ms | unknown p50 ms | staff p50 ms | registered slower |"
    )
    print("|---|---|---:|---:|---:|---:|")
    for row in rows:
        print(
            f"| {row['flow']} | {', '.join(map(str, row['statuses']))} "
            f"| {row['registered ms']:.1f} | {row['unknown ms']:.1f} | {row['staff ms']:.1f} "
            f"| {row['registered slower']} of {pairs} |"
        )


if __name__ == "__main__":
    sys.exit(main())
