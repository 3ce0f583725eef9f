"""The private servers of the two commands (embedded_servers.py): `dev.py start` keeps
its PostgreSQL's data from one start to the next, `dev.py test` leaves nothing behind,
and a server never outlives the dev.py that started it, even one killed outright."""

import signal
import subprocess
import sys
import time

import psycopg
import redis
from django.conf import settings

STOP_SECONDS = 60


def start_server(*arguments: str) -> tuple[subprocess.Popen, str]:
    """embedded_servers.py running with its stdin a pipe; the process and the URL it printed."""
    process = subprocess.Popen(
        [sys.executable, "embedded_servers.py", *arguments],
        cwd=settings.BASE_DIR,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    _name, _, url = process.stdout.readline().strip().partition("=")
    assert url, f"embedded_servers.py {' '.join(arguments)} printed no URL"
    return process, url


def stop_server(process: subprocess.Popen) -> None:
    process.stdin.close()
    assert process.wait(timeout=STOP_SECONDS) == 0


def postgres_answers(url: str) -> bool:
    try:
        with psycopg.connect(url, connect_timeout=2):
            return True
    except psycopg.OperationalError:
        return False


def test_start_s_postgres_keeps_its_data_from_one_start_to_the_next(tmp_path):
    data_dir = tmp_path / "postgres"
    process, url = start_server("postgres", str(data_dir))
    with psycopg.connect(url, autocommit=True) as connection:
        version = connection.execute("SHOW server_version").fetchone()[0]
        connection.execute("CREATE TABLE kept (note text)")
        connection.execute("INSERT INTO kept VALUES ('still here')")
    stop_server(process)

    assert not postgres_answers(url)
    process, url_again = start_server("postgres", str(data_dir))
    try:
        with psycopg.connect(url_again) as connection:
            assert connection.execute("SELECT note FROM kept").fetchall() == [("still here",)]
    finally:
        stop_server(process)
    assert url_again == url
    assert version.startswith("18")


def test_the_tests_postgres_is_deleted_when_it_stops(tmp_path):
    data_dir = tmp_path / "postgres"
    process, url = start_server("postgres", str(data_dir), "--temporary")
    assert postgres_answers(url)

    stop_server(process)

    assert not postgres_answers(url)
    assert not data_dir.exists()


def test_a_killed_dev_py_takes_its_private_servers_down_with_it(tmp_path):
    """dev.py holds the servers' stdin; the kernel closes it when dev.py dies, however."""
    data_dir = tmp_path / "postgres"
    # A stand-in for dev.py: starts both servers, prints their URLs, then waits to be killed.
    stand_in = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; sys.path.insert(0, '.'); import dev\n"
            f"with dev.embedded_server('postgres', {str(data_dir)!r}) as database, "
            "dev.embedded_server('valkey') as broker:\n"
            "    print(database['DATABASE_URL'], broker['REDIS_URL'], flush=True)\n"
            "    time.sleep(600)\n",
        ],
        cwd=settings.BASE_DIR,
        stdout=subprocess.PIPE,
        text=True,
    )
    database_url, redis_url = stand_in.stdout.readline().split()
    assert postgres_answers(database_url)
    assert redis.Redis.from_url(redis_url).ping()

    stand_in.send_signal(signal.SIGKILL)
    stand_in.wait()

    assert wait_until(lambda: not postgres_answers(database_url))
    assert wait_until(lambda: not redis_answers(redis_url))


def redis_answers(url: str) -> bool:
    try:
        return redis.Redis.from_url(url, socket_connect_timeout=1).ping()
    except redis.ConnectionError:
        return False


def wait_until(condition, seconds: float = STOP_SECONDS) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return False


def test_the_tests_valkey_keeps_nothing_after_it_stops():
    process, url = start_server("valkey")
    client = redis.Redis.from_url(url)
    client.set("loyalty:probe", "1")
    assert client.get("loyalty:probe") == b"1"

    stop_server(process)

    assert not redis_answers(url)
    process, url_again = start_server("valkey")
    try:
        assert redis.Redis.from_url(url_again).get("loyalty:probe") is None
    finally:
        stop_server(process)
