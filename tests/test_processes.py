"""The smoke test: the processes docker-compose.yml runs (gunicorn, a Celery worker,
Celery beat), started for real against the test database and the test Redis.

It proves what unit tests cannot: the WSGI app serves a storefront over HTTP, the
worker consumes tasks from the broker, and beat starts with the schedule in code."""

import os
import time

import pytest

from config.celery import app as celery_app
from loyalty.models import LedgerCheckRun, Member
from loyalty.services.stores import store_create
from tests.processes import (
    CELERY,
    Stack,
    child_env,
    post_json,
    purge_default_queue,
    start_child,
    start_gunicorn,
    stop_children,
)

TASK_SECONDS = 30
LEDGER_CHECK_TASK = "loyalty.tasks.ledger_check"


@pytest.fixture
def stack(transactional_db, tmp_path):
    """gunicorn, a worker and beat on the test database; stopped however the test ends."""
    purge_default_queue()
    web = start_gunicorn(tmp_path, workers=2)
    env = child_env(tmp_path)
    commands = {
        # A node name of its own, so a worker of another run on this Redis cannot clash.
        "worker": [
            *CELERY,
            "worker",
            "--loglevel=info",
            "--concurrency=1",
            "--hostname",
            f"smoke-{os.getpid()}@%h",
        ],
        "beat": [*CELERY, "beat", "--loglevel=info"],
    }
    children = dict(web.children)
    try:
        for name, command in commands.items():
            children[name] = start_child(name, command, env, tmp_path)
        yield Stack(web.url, web.broker_url, children)
    finally:
        stop_children(children.values())


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
# conftest makes tasks eager; send_task goes through the broker all the same, as wanted here.
@pytest.mark.filterwarnings("ignore::celery.exceptions.AlwaysEagerIgnored")
def test_storefront_purchase_over_http_and_ledger_check_through_the_worker(stack):
    # given a store with a key, committed where the processes can see it
    _store, key = store_create(name="Smoke shop")

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


def wait_for_ledger_check_run(stack: Stack) -> LedgerCheckRun:
    deadline = time.monotonic() + TASK_SECONDS
    while time.monotonic() < deadline:
        run = LedgerCheckRun.objects.first()
        if run is not None:
            return run
        assert stack.children["worker"].process.poll() is None, stack.report()
        time.sleep(0.3)
    pytest.fail(f"no ledger check run within {TASK_SECONDS}s\n{stack.report()}")
