"""Slow clients cannot stop the service: the compose stack's nginx reads each request
whole before one of gunicorn's sync workers sees it.

gunicorn is started as docker-compose.yml starts it (with 2 workers), and Debian's nginx
runs the repository's own template (deploy/nginx/templates/), rendered as the official
image renders it. The attack: more connections than there are workers each send their
headers and part of a body, then stall."""

import json
import os
import pwd
import re
import socket
import time
import urllib.error
import urllib.request
from contextlib import ExitStack, closing, contextmanager

import pytest
from django.conf import settings

from loyalty.services.stores import store_create
from tests import compose
from tests.conftest import NGINX
from tests.processes import (
    STARTUP_SECONDS,
    Stack,
    free_port,
    post_json,
    start_child,
    start_gunicorn,
    stop_children,
    wait_for_health,
)

WORKERS = 2
SLOW_CLIENTS = 3 * WORKERS
# An answer comes in milliseconds; a worker held by a slow client is freed only when
# gunicorn's 30-second timeout kills it.
ANSWER_SECONDS = 5
TEMPLATE = settings.BASE_DIR / "deploy" / "nginx" / "templates" / "default.conf.template"
PHONE_IN_QUERY = "?next=/admin/loyalty/member/%3Fq%3D138%200013%208000"


@pytest.fixture
def store_key(transactional_db):
    return store_create(name="Slow clients shop")[1]


@pytest.fixture
def gunicorn(transactional_db, tmp_path):
    """gunicorn as the compose stack's web service runs it, on a free port."""
    stack = start_gunicorn(tmp_path, workers=WORKERS, command=compose.command("web", {}))
    try:
        yield stack
    finally:
        stop_children(stack.children.values())


@pytest.fixture
def proxy(gunicorn, tmp_path):
    """Debian's nginx with the repository's template, in front of `gunicorn`."""
    if not NGINX.exists():
        pytest.skip(f"needs nginx at {NGINX}: apt-get install nginx-light (as .ci/run does)")
    port = free_port()
    prefix = tmp_path / "nginx"
    (prefix / "conf.d").mkdir(parents=True)
    variables = compose.environment("proxy", {}) | {
        "NGINX_PORT": str(port),
        "WEB_UPSTREAM": gunicorn.url.removeprefix("http://"),
        # The image's own lookup of the container's DNS; unused for an address.
        "NGINX_LOCAL_RESOLVERS": "127.0.0.1",
    }
    (prefix / "conf.d" / "default.conf").write_text(render(TEMPLATE.read_text(), variables))
    # What the official image's nginx.conf holds around conf.d, with this run's paths.
    temp_paths = "\n".join(
        f"    {kind}_temp_path {prefix / kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    (prefix / "nginx.conf").write_text(
        f"user {pwd.getpwuid(os.geteuid()).pw_name};\n"
        "daemon off;\n"
        "worker_processes 1;\n"
        f"pid {prefix / 'nginx.pid'};\n"
        "events { worker_connections 256; }\n"
        f"http {{\n{temp_paths}\n    include {prefix / 'conf.d' / 'default.conf'};\n}}\n"
    )
    child = start_child(
        "nginx",
        [str(NGINX), "-p", str(prefix), "-e", "stderr", "-c", str(prefix / "nginx.conf")],
        dict(os.environ),
        tmp_path,
    )
    stack = Stack(f"http://127.0.0.1:{port}", "", {**gunicorn.children, "nginx": child})
    try:
        wait_for_health(stack)
        yield stack
    finally:
        stop_children([child])


def render(template: str, variables: dict[str, str]) -> str:
    """envsubst with the names of the variables set, as the official image runs it: any
    other $name is nginx's own and stays."""
    return re.sub(
        r"\$\{(\w+)\}",
        lambda match: variables.get(match.group(1), match.group()),
        template,
    )


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_behind_the_proxy_slow_clients_leave_health_and_earn_answering(proxy, store_key):
    # given more clients than workers, each stalled in the middle of its body
    with slow_clients(proxy.url, store_key):
        # then the service still answers at once: its health and a purchase
        assert get_status(f"{proxy.url}/healthz") == 200, proxy.report()
        status, body = post_json(
            f"{proxy.url}/api/v1/purchases",
            {"phone": "13800138000", "order_id": "FAST-1", "amount": "300.00"},
            headers={"Authorization": f"Api-Key {store_key}"},
        )
        assert status == 201, f"{status} {body}\n{proxy.report()}"
        assert body["points_earned"] == 300


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_without_the_proxy_slow_clients_stall_gunicorn(gunicorn, store_key):
    """Why the proxy is there: the same clients straight to gunicorn hold every worker."""
    with slow_clients(gunicorn.url, store_key), pytest.raises(TimeoutError):
        get_status(f"{gunicorn.url}/healthz")


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_the_proxys_logs_never_hold_a_phone(proxy, store_key):
    # given requests with a phone in their query string: answered, and one that stalls
    # and is dropped, which nginx would report with its whole request line
    assert get_status(f"{proxy.url}/healthz{PHONE_IN_QUERY}") == 200
    assert get_status(f"{proxy.url}/healthz?phone=%2B8613800138000") == 200
    stalled_purchase(proxy.url, store_key, 1, query=PHONE_IN_QUERY).close()

    # when nginx has written what it logs about them
    nginx = proxy.children["nginx"]
    deadline = time.monotonic() + STARTUP_SECONDS
    while "POST /api/v1/purchases" not in nginx.output():
        assert time.monotonic() < deadline, f"nginx logged no dropped request\n{nginx.output()}"
        time.sleep(0.2)
    stop_children([nginx])

    # then they are there, each with its path and status, and the phone is not
    log = nginx.output()
    assert log.count('"GET /healthz HTTP/1.1" 200') == 3, log  # the wait for health too
    assert '"POST /api/v1/purchases HTTP/1.1" 400' in log, log
    assert "0013" not in log and "13800138000" not in log, log


@contextmanager
def slow_clients(url: str, key: str):
    """More clients than gunicorn has workers, each stalled in the middle of its body."""
    with ExitStack() as open_sockets:
        for number in range(SLOW_CLIENTS):
            open_sockets.enter_context(closing(stalled_purchase(url, key, number)))
        yield


def stalled_purchase(url: str, key: str, number: int, query: str = "") -> socket.socket:
    """A purchase whose client sends the headers and the start of the body, then nothing."""
    body = json.dumps(
        {"phone": "13800138000", "order_id": f"SLOW-{number}", "amount": "300.00"}
    ).encode()
    host, port = url.removeprefix("http://").split(":")
    client = socket.create_connection((host, int(port)), timeout=ANSWER_SECONDS)
    client.sendall(
        f"POST /api/v1/purchases{query} HTTP/1.1\r\n"
        f"Host: localhost\r\n"
        f"Authorization: Api-Key {key}\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body[:10]
    )
    return client


def get_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=ANSWER_SECONDS) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except urllib.error.URLError as error:
        if isinstance(error.reason, TimeoutError):
            raise error.reason from error
        raise
