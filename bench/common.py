"""What the benchmarks share: Django set up on a scratch database, and progress lines."""

import os
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SERVER_URL = "postgres://postgres@127.0.0.1:5432/loyalty"


def setup_django() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def recreate_database(server_url: str, name: str) -> None:
    progress(f"creating the scratch database {name}")
    drop_database(server_url, name)
    _admin(server_url, f'CREATE DATABASE "{name}"')


def drop_database(server_url: str, name: str) -> None:
    _admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _admin(server_url: str, statement: str) -> None:
    import psycopg

    with psycopg.connect(with_database(server_url, "postgres"), autocommit=True) as admin:
        admin.execute(statement)


def progress(text: str, *, transient: bool = False) -> None:
    """A step on stderr; a transient one only on a terminal, overwritten by the next."""
    if transient and not sys.stderr.isatty():
        return
    sys.stderr.write(f"\r{text}" if transient else f"{text}\n")
    sys.stderr.flush()
