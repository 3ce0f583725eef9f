import argparse
import sys
from datetime import datetime

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from loyalty.services.expiry import ExpiryRun, points_expire


class Command(BaseCommand):
    help = (
        "Expire the points past their expiry date, as the daily job does. Safe to run "
        "again or beside the job: nothing expires twice."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--as-of",
            type=_past_instant,
            help="expire what was due at this instant (ISO 8601, local time unless it "
            "has an offset; default now); never in the future",
        )
        parser.add_argument("--chunk-size", type=int, help="members per transaction")

    def handle(self, *args, as_of=None, chunk_size=None, **options):
        def show_progress(run: ExpiryRun) -> None:
            if sys.stderr.isatty():
                self.stderr.write(
                    f"\rexpired {run.lots:,} lots of {run.members:,} members "
                    f"({run.members_skipped:,} skipped) in {run.seconds:.0f}s",
                    ending="",
                )

        run = points_expire(
            as_of=as_of or timezone.now(), chunk_size=chunk_size, on_chunk=show_progress
        )
        if sys.stderr.isatty() and run.chunks:
            self.stderr.write("")
        if not run.ran:
            raise CommandError(run.summary())
        self.stdout.write(self.style.SUCCESS(run.summary()))


def _past_instant(text: str) -> datetime:
    try:
        instant = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 date or time: {text!r}") from None
    if timezone.is_naive(instant):
        instant = timezone.make_aware(instant)
    if instant > timezone.now():
        raise argparse.ArgumentTypeError("in the future: points never expire ahead of time")
    return instant
