"""Celery beat's own scheduler over a stretch of time on a clock the test moves: the
schedule in code (config/celery.py) sends each job when beat would send it, and the job
runs, on the test database (conftest makes tasks eager, so beat's send runs it here).

The scheduler connects to the broker as beat does, so a test using it needs Redis
(mark it `services`)."""

from contextlib import contextmanager
from datetime import datetime, timedelta

import time_machine
from celery.beat import Scheduler

from config.celery import app as celery_app


class RecordingScheduler(Scheduler):
    """Beat's in-memory scheduler, noting the name of every task it sends."""

    def __init__(self, *args, **kwargs):
        self.sent: list[str] = []
        super().__init__(*args, **kwargs)

    def apply_async(self, entry, *args, **kwargs):
        self.sent.append(entry.task)
        return super().apply_async(entry, *args, **kwargs)


class Beat:
    def __init__(self, traveller):
        self._traveller = traveller
        # What a worker imports at start: every app's tasks.
        celery_app.loader.import_default_modules()
        self._scheduler = RecordingScheduler(app=celery_app)
        unknown = [
            e.task for e in self._scheduler.schedule.values() if e.task not in celery_app.tasks
        ]
        assert not unknown, f"beat would send tasks no worker has: {unknown}"

    @property
    def sent(self) -> list[str]:
        """Every task sent so far, in order."""
        return list(self._scheduler.sent)

    def run_until(self, moment: datetime, step: timedelta = timedelta(minutes=1)) -> None:
        """Move the clock to `moment` a step at a time, sending at each step whatever
        is due, as beat's loop does when it wakes."""
        now = datetime.now(moment.tzinfo)
        while now < moment:
            now = min(now + step, moment)
            self._traveller.move_to(now)
            while self._scheduler.tick() == 0:
                pass


@contextmanager
def beat_started_at(moment: datetime):
    """Beat started at `moment`, on a clock that moves only with `run_until`."""
    with time_machine.travel(moment, tick=False) as traveller:
        yield Beat(traveller)
