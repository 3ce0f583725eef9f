"""The README's first command, `python3 dev.py start`, as a newcomer runs it: on the
embedded defaults (no PostgreSQL, no Redis), it says where to look, prints the demo
store's key (the same on the next start), logs no needless warning, and stops whole
on Ctrl-C."""

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings

from tests.processes import free_port

START_SECONDS = 120
# Celery warns a worker started as root; a newcomer's shell is not root, this machine's is.
ROOT_ONLY = re.compile(r"SecurityWarning: You're running the worker with superuser privileges")
WARNING = re.compile(r"\bWARNING\b|Warning:")


def start(var_dir: Path, port: int) -> tuple[subprocess.Popen, list[str]]:
    """dev.py start until its banner's last line, the key; the process and its lines."""
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "DJANGO_DEBUG")
    }
    env |= {"LOYALTY_VAR_DIR": str(var_dir), "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "dev.py", "start", "--port", str(port)],
        cwd=settings.BASE_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    lines = []
    deadline = time.monotonic() + START_SECONDS
    for line in process.stdout:
        lines.append(line.rstrip("\n"))
        if lines[-1].startswith("API key of") or time.monotonic() > deadline:
            break
    lines.append(process.stdout.readline().rstrip("\n"))
    return process, lines


def stop(process: subprocess.Popen) -> list[str]:
    process.send_signal(signal.SIGINT)
    rest, _ = process.communicate(timeout=60)
    return rest.splitlines()


def printed_key(lines: list[str]) -> str:
    """The line after "API key of …": the key, alone."""
    heading = next(i for i, line in enumerate(lines) if line.startswith("API key of"))
    return lines[heading + 1]


@pytest.mark.skipif(
    not (Path(settings.BASE_DIR) / ".venv" / "bin" / "python").exists(),
    reason="dev.py start runs from .venv, which `python3 dev.py test` creates",
)
def test_the_start_command_says_where_to_look_and_keeps_the_demo_key(tmp_path):
    process, first = start(tmp_path, free_port())
    first += stop(process)
    process, second = start(tmp_path, free_port())
    stopping = stop(process)
    second += stopping

    assert process.returncode == 0, "\n".join(second)
    # The last word, once the database has stopped too, says where the data stays.
    assert stopping[-1] == (
        f"Stopped. Everything it wrote is kept in a private PostgreSQL in {tmp_path / 'postgres'}."
    )
    assert any(line.startswith("Admin:") for line in first), "\n".join(first)
    assert re.fullmatch(r"\w{8}\.\w{32}", printed_key(first)), "\n".join(first)
    assert printed_key(second) == printed_key(first)
    warnings = [
        line for line in first + second if WARNING.search(line) and not ROOT_ONLY.search(line)
    ]
    assert warnings == []
