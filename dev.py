#!/usr/bin/env python3
"""The two commands a newcomer needs, on a machine with only Python 3.11+:

    python3 dev.py start [--port 8000]   run the web server, a Celery worker and beat
    python3 dev.py test [pytest args]    run the test suite

Both create .venv and install the project into it first. Without DATABASE_URL they
start a private PostgreSQL from a PyPI wheel (data in var/postgres for start, in a
temporary folder for the tests) and stop it when they stop; the tests likewise start a
private Valkey, Redis-compatible, without REDIS_URL (embedded_servers.py). Standard
library only, since nothing else is installed when it first runs.
"""

import argparse
import contextlib
import hashlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import venv
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
VENV_PYTHON = VENV / "bin" / "python"
# Holds the hash of the pyproject.toml last installed, so an unchanged project is not reinstalled.
INSTALL_STAMP = VENV / ".dev-installed"

SERVER_START_SECONDS = 30
# A private PostgreSQL stops with a checkpoint, which a large test run makes slow.
EMBEDDED_STOP_SECONDS = 60
CHILD_STOP_SECONDS = 10
PYTEST_NO_TESTS_COLLECTED = 5


def main() -> int:
    # Ruff assumes the project's Python; this runs under whatever python3 the machine has.
    if sys.version_info < (3, 11):  # noqa: UP036
        sys.exit(f"dev.py needs Python 3.11 or newer; this is {sys.version.split()[0]}.")
    args = parse_args()
    try:
        ensure_venv()
        if args.command == "start":
            return start(port=args.port)
        return run_tests(args.pytest_args)
    except KeyboardInterrupt:
        return 130


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Run the service or its tests, in .venv.")
    commands = parser.add_subparsers(dest="command", required=True)
    start_parser = commands.add_parser("start", help="run the whole service on this machine")
    start_parser.add_argument("--port", type=int, default=8000, help="web server port (8000)")
    # Without options of its own, so every argument after `test`, -h and -k included, is pytest's.
    commands.add_parser("test", help="run the tests; extra arguments go to pytest", add_help=False)
    args, pytest_args = parser.parse_known_args()
    if pytest_args and args.command != "test":
        parser.error(f"unrecognized arguments: {' '.join(pytest_args)}")
    args.pytest_args = pytest_args
    return args


# --- The virtual environment -------------------------------------------------


def ensure_venv() -> None:
    if not VENV_PYTHON.exists():
        print(f"Creating .venv with Python {sys.version.split()[0]}…", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if INSTALL_STAMP.exists() and INSTALL_STAMP.read_text().strip() == wanted:
        return
    print("Installing the project and its dependencies into .venv…", flush=True)
    pip = [VENV_PYTHON, "-m", "pip", "--disable-pip-version-check"]
    if subprocess.run([*pip, "install", "--quiet", "-e", ".[dev]"], cwd=ROOT).returncode:
        sys.exit("Installing into .venv failed (pip's message is above).")
    INSTALL_STAMP.write_text(wanted + "\n")


# --- start ---------------------------------------------------------------------


def start(*, port: int) -> int:
    # Checked first: another server there would answer our health check and hide the clash.
    if port_open("127.0.0.1", port):
        sys.exit(f"Port {port} is in use already; choose another with --port.")
    env = dev_server_env()
    var_dir = make_var_dirs(env)
    with contextlib.ExitStack() as servers:
        if "DATABASE_URL" in env:
            database = without_password(env["DATABASE_URL"])
        else:
            env |= servers.enter_context(embedded_server("postgres", str(var_dir / "postgres")))
            database = f"a private PostgreSQL in {var_dir / 'postgres'}"
        code = run_service(port=port, env=env, database=database)
    # Said once everything has stopped, the database too: the terminal is free again.
    print(f"Stopped. Everything it wrote is kept in {database}.", flush=True)
    return code


def run_service(*, port: int, env: dict[str, str], database: str) -> int:
    manage(["migrate", "--no-input"], env)
    demo_lines = manage(["seed_demo"], env, capture=True).splitlines()
    children = start_children(port=port, env=env)
    # Ctrl-C, a `kill` and a closed terminal all end in the same clean stop. SIGINT too:
    # a shell starting dev.py in the background with `&` has it ignored.
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.default_int_handler)
    try:
        if wait_for_server(f"http://127.0.0.1:{port}/healthz", children):
            print_banner(port=port, database=database, demo_lines=demo_lines)
        return wait_while_all_alive(children)
    except KeyboardInterrupt:
        print("\nStopping…", flush=True)
        return 0
    finally:
        stop_children(children)


def dev_server_env() -> dict[str, str]:
    """The caller's environment; settings fall back to a broker in files under var/
    for whatever it does not set."""
    env = dict(os.environ)
    env.setdefault("DJANGO_DEBUG", "1")
    # The banner says what this is; Django's warning against the development server in
    # production would only repeat it at every start.
    env.setdefault("DJANGO_RUNSERVER_HIDE_WARNING", "true")
    # Children write through pipes; unbuffered, their lines show up when they happen.
    env["PYTHONUNBUFFERED"] = "1"
    return env


def make_var_dirs(env: dict[str, str]) -> Path:
    var_dir = Path(env.get("LOYALTY_VAR_DIR", ROOT / "var"))
    # The filesystem broker fails on a missing folder instead of creating it.
    (var_dir / "broker" / "processed").mkdir(parents=True, exist_ok=True)
    # WhiteNoise warns at every start while STATIC_ROOT does not exist.
    (var_dir / "static").mkdir(exist_ok=True)
    return var_dir


def manage(arguments: list[str], env: dict[str, str], *, capture: bool = False) -> str:
    result = subprocess.run(
        [VENV_PYTHON, "manage.py", *arguments],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE if capture else None,
        text=True,
    )
    if result.returncode:
        sys.exit(f"manage.py {arguments[0]} failed (exit {result.returncode}); stopping.")
    return result.stdout or ""


class Child:
    """One long-running process whose output is copied to ours, each line tagged with its name."""

    def __init__(self, name: str, command: list, env: dict[str, str]):
        self.name = name
        # A session of its own: Ctrl-C reaches only dev.py, which stops the children in order.
        self.process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            start_new_session=True,
        )
        self.copier = threading.Thread(target=self._copy_output, daemon=True)
        self.copier.start()

    def _copy_output(self) -> None:
        for line in self.process.stdout:
            sys.stdout.write(f"{self.name:>6} | {line}")
            sys.stdout.flush()


def start_children(*, port: int, env: dict[str, str]) -> list[Child]:
    runserver = [VENV_PYTHON, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"]
    celery = [VENV_PYTHON, "-m", "celery", "-A", "config"]
    return [
        Child("web", runserver, env),
        Child("worker", [*celery, "worker", "--pool=solo", "--loglevel=info"], env),
        Child("beat", [*celery, "beat", "--loglevel=info"], env),
    ]


def wait_for_server(url: str, children: list[Child]) -> bool:
    """True once the web server answers; False if a child died first or it never answered."""
    deadline = time.monotonic() + SERVER_START_SECONDS
    while time.monotonic() < deadline:
        if any(child.process.poll() is not None for child in children):
            return False
        try:
            with urllib.request.urlopen(url, timeout=2):
                return True
        except urllib.error.HTTPError as error:
            print(f"{url} answered {error.code}: {error.read().decode(errors='replace')}")
            return True
        except OSError:
            time.sleep(0.5)
    print(f"The web server did not answer {url} within {SERVER_START_SECONDS}s.")
    return False


def print_banner(*, port: int, database: str, demo_lines: list[str]) -> None:
    base = f"http://127.0.0.1:{port}"
    lines = [
        "Loyalty points is running. Ctrl-C stops it.",
        f"Admin:    {base}/admin/",
        f"API docs: {base}/api/docs/",
        f"Database: {database}",
        *demo_lines,
    ]
    width = max(len(line) for line in lines)
    rule = "=" * width
    print("\n".join(["", rule, *lines, rule, ""]), flush=True)


def wait_while_all_alive(children: list[Child]) -> int:
    """Return 1 as soon as any child exits: the service is not whole without it."""
    while True:
        for child in children:
            code = child.process.poll()
            if code is not None:
                print(f"{child.name} exited with code {code}; stopping the others.", flush=True)
                return 1
        time.sleep(0.5)


def stop_children(children: list[Child]) -> None:
    # A second Ctrl-C must not cut the stop short and leave children behind; it is bounded anyway.
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.SIG_IGN)
    for child in children:
        signal_child(child, signal.SIGTERM)
    deadline = time.monotonic() + CHILD_STOP_SECONDS
    for child in children:
        try:
            child.process.wait(timeout=max(deadline - time.monotonic(), 0))
        except subprocess.TimeoutExpired:
            print(f"{child.name} did not stop in {CHILD_STOP_SECONDS}s; killing it.", flush=True)
            signal_child(child, signal.SIGKILL)
            child.process.wait()
        child.copier.join(timeout=1)


def signal_child(child: Child, signum: int) -> None:
    """Signal the child's whole process group, so any process it started stops too."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(child.process.pid, signum)


# --- private servers -------------------------------------------------------------


@contextlib.contextmanager
def embedded_server(*arguments: str) -> Iterator[dict[str, str]]:
    """Run a private server with embedded_servers.py while the block runs; yield the
    variable it sets, as {name: URL}. Closing its standard input stops it, so the
    server also stops if dev.py is killed."""
    process = subprocess.Popen(
        [VENV_PYTHON, "embedded_servers.py", *arguments],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        # Ctrl-C reaches only dev.py, which stops the server after what uses it.
        start_new_session=True,
    )
    try:
        name, _, url = process.stdout.readline().strip().partition("=")
        if not url:
            sys.exit(f"The private {arguments[0]} server did not start (its message is above).")
        yield {name: url}
    finally:
        process.stdin.close()
        try:
            process.wait(timeout=EMBEDDED_STOP_SECONDS)
        except subprocess.TimeoutExpired:
            print(f"The private {arguments[0]} server did not stop; killing it.", flush=True)
            process.kill()
            process.wait()


# --- test ----------------------------------------------------------------------


def run_tests(pytest_args: list[str]) -> int:
    env = dict(os.environ)
    with contextlib.ExitStack() as servers:
        if "DATABASE_URL" not in env:
            data_dir = Path(servers.enter_context(tempfile.TemporaryDirectory(prefix="loyalty-")))
            env |= servers.enter_context(
                embedded_server("postgres", str(data_dir / "postgres"), "--temporary")
            )
        if "REDIS_URL" not in env:
            env |= servers.enter_context(embedded_server("valkey"))
        print(
            f"Tests run on PostgreSQL at {without_password(env['DATABASE_URL'])} "
            f"and Redis at {without_password(env['REDIS_URL'])}.",
            flush=True,
        )
        command = [VENV_PYTHON, "-m", "pytest", *pytest_args]
        code = subprocess.run(command, cwd=ROOT, env=env).returncode
    if code == PYTEST_NO_TESTS_COLLECTED:
        print("pytest collected no tests: that counts as a failure.", file=sys.stderr)
    return code


def port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def without_password(url: str) -> str:
    parts = urlsplit(url)
    if not parts.password:
        return url
    return parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@", 1)).geturl()


if __name__ == "__main__":
    sys.exit(main())
