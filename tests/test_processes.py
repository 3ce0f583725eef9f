"""The smoke test: the processes docker-compose.yml runs (gunicorn, a Celery worker,
Celery beat), started for real against the test database and the test Redis.

It proves what unit tests cannot: the WSGI app serves a storefront over HTTP, the
worker consumes tasks from the broker, and beat starts with the schedule in code."""

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connection

from config.celery import app as celery_app
from loyalty.models import LedgerCheckRun, Member
from loyalty.services.stores import store_create

STARTUP_SECONDS = 30
TASK_SECONDS = 30
STOP_SECONDS = 10
LEDGER_CHECK_TASK = "loyalty.tasks.ledger_check"


@dataclass
class Child:
    name: str
    process: subprocess.Popen
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@dataclass
class Stack:
    url: str
    broker_url: str
    children: dict[str, Child]

    def report(self) -> str:
        """Every child's exit status and output, for a failure message."""
        return "\n".join(
            f"----- {child.name} (exit code {child.process.poll()}) -----\n{child.output()}"
            for child in self.children.values()
        )

    def wait_for_log(self, name: str, text: str) -> None:
        child = self.children[name]
        deadline = time.monotonic() + STARTUP_SECONDS
        while text not in child.output():
            assert child.process.poll() is None, f"{name} exited early\n{self.report()}"
            assert time.monotonic() < deadline, f"{name} never logged {text!r}\n{self.report()}"
            time.sleep(0.2)


@pytest.fixture
def stack(transactional_db, tmp_path):
    """gunicorn, a worker and beat on the test database; stopped however the test ends."""
    broker_url = os.environ["REDIS_URL"]
    purge_default_queue(broker_url)
    port = free_port()
    # WhiteNoise warns at every start while STATIC_ROOT does not exist.
    (tmp_path / "static").mkdir()
    env = {
        **os.environ,
        "DATABASE_URL": created_test_database_url(),
        "REDIS_URL": broker_url,
        "CELERY_BROKER_URL": broker_url,
        "LOYALTY_VAR_DIR": str(tmp_path),
        "PYTHONUNBUFFERED": "1",
    }
    celery = [sys.executable, "-m", "celery", "-A", "config"]
    commands = {
        "gunicorn": [
            sys.executable,
            "-m",
            "gunicorn",
            "config.wsgi",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "2",
        ],
        # A node name of its own, so a worker of another run on this Redis cannot clash.
        "worker": [
            *celery,
            "worker",
            "--loglevel=info",
            "--concurrency=1",
            "--hostname",
            f"smoke-{os.getpid()}@%h",
        ],
        "beat": [*celery, "beat", "--loglevel=info"],
    }
    children = {}
    try:
        for name, command in commands.items():
            children[name] = start_child(name, command, env, tmp_path)
        yield Stack(f"http://127.0.0.1:{port}", broker_url, children)
    finally:
        stop_children(children.values())


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
# conftest makes tasks eager; send_task goes through the broker all the same, as wanted here.
@pytest.mark.filterwarnings("ignore::celery.exceptions.AlwaysEagerIgnored")
def test_storefront_purchase_over_http_and_ledger_check_through_the_worker(stack):
    # given a store with a key, committed where the processes can see it
    _store, key = store_create(name="Smoke shop")
    wait_for_health(stack)

    # when the storefront reports a purchase over HTTP
    status, body = post_json(
        f"{stack.url}/api/v1/purchases",
        {"phone": "13800138000", "order_id": "SMOKE-1", "amount": "300.00"},
        headers={"Authorization": f"Api-Key {key}"},
    )

    # then the member earned the points, in the answer and in the database
    assert status == 201, f"{status} {body}\n{stack.report()}"
    assert body["points_earned"] == 300
    assert body["member"] == {"phone": "+8613800138000", "balance": 300}
    assert Member.objects.get(phone="+8613800138000").balance == 300

    # when the nightly ledger check is sent through the broker, as beat would
    # (once the worker listens: until a consumer declares the queue, Redis has no
    # binding to route the message by and sets it aside)
    stack.wait_for_log("worker", " ready.")
    with celery_app.connection_for_write(stack.broker_url) as broker:
        celery_app.send_task(LEDGER_CHECK_TASK, connection=broker)

    # then the worker ran it on the test database and found the ledger whole
    run = wait_for_ledger_check_run(stack)
    assert (run.members_checked, run.breach_count) == (1, 0), run.breaches

    # and beat started and kept running alongside
    stack.wait_for_log("beat", "beat: Starting...")
    assert stack.children["beat"].process.poll() is None, stack.report()


def created_test_database_url() -> str:
    """The URL of the database pytest-django created, for the child processes."""
    db = connection.settings_dict
    credentials = quote(db["USER"], safe="")
    if db["PASSWORD"]:
        credentials += ":" + quote(db["PASSWORD"], safe="")
    name = quote(db["NAME"])
    # A private server (dev.py test) listens on a socket in its data folder only.
    socket_dir = db["OPTIONS"].get("host")
    if socket_dir:
        return f"postgres://{credentials}@/{name}?host={quote(socket_dir, safe='')}"
    return f"postgres://{credentials}@{db['HOST']}:{db['PORT'] or 5432}/{name}"


def purge_default_queue(broker_url: str) -> None:
    """Drop tasks a killed earlier run left in the test Redis, so the run the test
    waits for can only come from the task it sends. Only this one queue is touched."""
    with celery_app.connection_for_write(broker_url) as broker:
        broker.default_channel.queue_purge(celery_app.conf.task_default_queue)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_child(name: str, command: list[str], env: dict, log_dir: Path) -> Child:
    log = log_dir / f"{name}.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            command,
            cwd=settings.BASE_DIR,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            # Its own process group, so stopping it also stops gunicorn's and Celery's workers.
            start_new_session=True,
        )
    return Child(name, process, log)


def stop_children(children) -> None:
    for child in children:
        signal_group(child.process, signal.SIGTERM)
    for child in children:
        try:
            child.process.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            signal_group(child.process, signal.SIGKILL)
            child.process.wait()


def signal_group(process: subprocess.Popen, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signum)


def wait_for_health(stack: Stack) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    last_answer = "no answer"
    while time.monotonic() < deadline:
        assert stack.children["gunicorn"].process.poll() is None, stack.report()
        try:
            with urllib.request.urlopen(f"{stack.url}/healthz", timeout=2) as response:
                if response.status == 200:
                    return
        except urllib.error.HTTPError as error:
            last_answer = f"{error.code} {error.read()!r}"
        except OSError as error:
            last_answer = repr(error)
        time.sleep(0.3)
    pytest.fail(f"/healthz never answered 200 (last: {last_answer})\n{stack.report()}")


def post_json(url: str, payload: dict, *, headers: dict) -> tuple[int, dict]:
    request = urllib.request.Request(
        url,
        data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json", **headers},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, {"raw": error.read().decode(errors="replace")}


def wait_for_ledger_check_run(stack: Stack) -> LedgerCheckRun:
    deadline = time.monotonic() + TASK_SECONDS
    while time.monotonic() < deadline:
        run = LedgerCheckRun.objects.first()
        if run is not None:
            return run
        assert stack.children["worker"].process.poll() is None, stack.report()
        time.sleep(0.3)
    pytest.fail(f"no ledger check run within {TASK_SECONDS}s\n{stack.report()}")
