"""The project's processes started for real, as children of the test: gunicorn, Celery
workers and beat, on the test database and the test Redis. Each runs in a process group
of its own (stopping it stops gunicorn's and Celery's own children too) and writes its
output to a file in the test's tmp_path, which a failure message shows.

A Celery worker consumes a queue of its own, so no other test's tasks reach it; the
project's settings (acks_late, reject_on_worker_lost, prefetch 1) and one pool process
make killing that process mid-task the task's process dying (the OOM killer, a crash):
the worker's main process hands the task back to the broker and starts a new pool
process, which takes the task again and redoes it from the start."""

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

STARTUP_SECONDS = 30
STOP_SECONDS = 10
WAIT_SECONDS = 30
GUNICORN = ["gunicorn", "config.wsgi"]


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


def broker_url() -> str:
    return os.environ["REDIS_URL"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def child_env(tmp_path: Path, **variables: str) -> dict[str, str]:
    """The test's environment, on the test database and broker, keeping files in tmp_path."""
    return {
        **os.environ,
        "DATABASE_URL": created_test_database_url(),
        "CELERY_BROKER_URL": broker_url(),
        "LOYALTY_VAR_DIR": str(tmp_path),
        "PYTHONUNBUFFERED": "1",
        **variables,
    }


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


# --- gunicorn ----------------------------------------------------------------------------


def start_gunicorn(
    tmp_path: Path, *options: str, workers: int, command: list[str] = GUNICORN
) -> Stack:
    """gunicorn serving the app on a free port of 127.0.0.1, once /healthz answers 200.
    `command` is gunicorn's and its arguments (docker-compose.yml's, say); the bind
    address and the number of workers are the test's."""
    port = free_port()
    # WhiteNoise warns at every start while STATIC_ROOT does not exist.
    (tmp_path / "static").mkdir(exist_ok=True)
    command = list(command)
    if "--bind" in command:
        del command[command.index("--bind") : command.index("--bind") + 2]
    arguments = [*command, "--bind", f"127.0.0.1:{port}", "--workers", str(workers), *options]
    child = start_child(
        "gunicorn", [sys.executable, "-m", *arguments], child_env(tmp_path), tmp_path
    )
    stack = Stack(f"http://127.0.0.1:{port}", broker_url(), {"gunicorn": child})
    try:
        wait_for_health(stack)
    except BaseException:
        stop_children([child])
        raise
    return stack


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


# --- Celery ------------------------------------------------------------------------------

CELERY = [sys.executable, "-m", "celery", "-A", "config"]


class Worker:
    """One Celery worker consuming a queue of its own; the tasks its jobs queue (texts)
    wait in the default queue until `also_consume`."""

    def __init__(self, child: Child, queue: str):
        self.child = child
        self.queue = queue
        self.node = f"{queue}@{socket.gethostname()}"

    def send(self, task: str, *args) -> None:
        with celery_app.connection_for_write(broker_url()) as broker:
            celery_app.send_task(task, args=args, queue=self.queue, connection=broker)

    def also_consume(self, queue: str) -> None:
        with celery_app.connection_for_write(broker_url()) as broker:
            replies = celery_app.control.add_consumer(
                queue, destination=[self.node], reply=True, connection=broker, timeout=10
            )
        assert replies, f"the worker did not answer add_consumer\n{self.output()}"

    def output(self) -> str:
        return self.child.output()

    def count(self, text: str) -> int:
        return self.output().count(text)

    def pool_process(self) -> int:
        """The pid of the worker's one pool process, the child that runs tasks."""
        pids = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                state, parent = stat.read_text().rsplit(")", 1)[1].split()[:2]
            except OSError:
                continue
            if int(parent) == self.child.process.pid and state != "Z":
                pids.append(int(stat.parent.name))
        assert len(pids) == 1, f"pool processes {pids}\n{self.output()}"
        return pids[0]

    def kill_pool_process(self) -> None:
        """SIGKILL the pool process, and have the main process notice at once.

        The main process hears of a pool process's end when the pipe it holds to it
        closes, which the kernel does a moment before the process can be reaped: when
        it looks too soon, the loss waits for its next round of checks, up to 5 s
        later. Paused until the killed process can be reaped, it never looks too soon."""
        pool_process = self.pool_process()
        os.kill(self.child.process.pid, signal.SIGSTOP)
        try:
            os.kill(pool_process, signal.SIGKILL)
            while process_state(pool_process) not in ("Z", None):
                time.sleep(0.001)
        finally:
            os.kill(self.child.process.pid, signal.SIGCONT)

    def wait_until(self, condition, failure: str, seconds: float = WAIT_SECONDS) -> None:
        deadline = time.monotonic() + seconds
        while not condition():
            assert self.child.process.poll() is None, f"the worker exited\n{self.output()}"
            if time.monotonic() > deadline:
                pytest.fail(f"{failure} within {seconds}s\n{self.output()}")
            time.sleep(0.002)


def process_state(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None


def start_worker(tmp_path: Path, **variables: str) -> Worker:
    """A worker with one pool process, ready, its environment's `variables` set."""
    queue = f"test-{os.getpid()}-{time.monotonic_ns()}"
    command = [
        *(*CELERY, "worker", "--loglevel=info", "--concurrency=1", "--queues", queue),
        *("--hostname", f"{queue}@%h"),
    ]
    worker = Worker(
        start_child("worker", command, child_env(tmp_path, **variables), tmp_path), queue
    )
    try:
        worker.wait_until(lambda: " ready." in worker.output(), "the worker never got ready")
    except BaseException:
        stop_children([worker.child])
        raise
    return worker


def stop_worker(worker: Worker) -> None:
    stop_children([worker.child])
    with celery_app.connection_for_write(broker_url()) as broker:
        broker.default_channel.queue_delete(worker.queue)


def purge_default_queue() -> None:
    """Drop tasks a killed earlier run left in the test Redis, so a task the test waits
    for can only come from what it sends. Only this one queue is touched."""
    with celery_app.connection_for_write(broker_url()) as broker:
        broker.default_channel.queue_purge(celery_app.conf.task_default_queue)
