"""Calls started at the same instant, for the tests that prove races: against
PostgreSQL's row locks, Redis's counters and the login limits."""

import threading
from concurrent.futures import ThreadPoolExecutor

from django.db import connections

from core.errors import AppError


def run_together(calls):
    """Start every call at the same instant on its own thread and database connection.
    Returns their results in order; a refusal (AppError) is a result, any other error
    is raised."""
    barrier = threading.Barrier(len(calls))

    def run(call):
        try:
            barrier.wait()
            return call()
        except AppError as refusal:
            return refusal
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(run, calls))
