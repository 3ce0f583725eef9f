"""A real Celery worker for the fault-injection tests, and SIGKILL for its pool process.

The worker runs the project's settings (acks_late, reject_on_worker_lost, prefetch 1)
on the test database and the test Redis, with one pool process. Killing that process
while it runs a task is the task's process dying mid-run (the kernel's OOM killer, a
crash): the worker's main process hands the task back to the broker and starts a new
pool process, which takes the task again and redoes it from the start."""

import json
import os
import random
import signal
import socket
import sys
import time
from pathlib import Path

import pytest
import redis

from config.celery import app as celery_app
from tests.test_processes import Child, created_test_database_url, start_child, stop_children

WAIT_SECONDS = 30
# What the worker's main process logs, once, when its pool process died under a task.
TASK_LOST = "Task handler raised error: WorkerLostError"


class Worker:
    """One Celery worker consuming a queue of its own, so no other test's tasks reach
    it; the tasks its jobs queue (texts) wait in the default queue until `also_consume`."""

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


def broker_url() -> str:
    return os.environ["REDIS_URL"]


def start_worker(tmp_path: Path, **settings: str) -> Worker:
    queue = f"reliability-{os.getpid()}-{time.monotonic_ns()}"
    env = {
        **os.environ,
        "DATABASE_URL": created_test_database_url(),
        "CELERY_BROKER_URL": broker_url(),
        "LOYALTY_VAR_DIR": str(tmp_path),
        "PYTHONUNBUFFERED": "1",
        **settings,
    }
    command = [
        *(sys.executable, "-m", "celery", "-A", "config", "worker"),
        *("--loglevel=info", "--concurrency=1", "--queues", queue),
        *("--hostname", f"{queue}@%h"),
    ]
    worker = Worker(start_child("worker", command, env, tmp_path), queue)
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
