import argparse
import sys
from datetime import datetime

from django.core.management.base import CommandError
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from loyalty.management.base import TranslatedCommand
from loyalty.services.expiry_job import ExpiryRun, points_expire


class Command(TranslatedCommand):
    help = _(
        "Expire the points past their expiry date, as the daily job does. Safe to run "
        "again or beside the job: nothing expires twice."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--as-of",
            type=_past_instant,
            help=gettext(
                "expire what was due at this instant (ISO 8601, local time unless it "
                "has an offset; default now); never in the future"
            ),
        )
        parser.add_argument("--chunk-size", type=int, help=gettext("members per transaction"))

    def handle(self, *args, as_of=None, chunk_size=None, **options):
        def show_progress(run: ExpiryRun) -> None:
            if sys.stderr.isatty():
                progress = gettext(
                    "expired %(lots)s lots of %(members)s members (%(skipped)s skipped) "
                    "in %(seconds)ss"
                ) % {
                    "lots": f"{run.lots:,}",
                    "members": f"{run.members:,}",
                    "skipped": f"{run.members_skipped:,}",
                    "seconds": f"{run.seconds:.0f}",
                }
                self.stderr.write("\r" + progress, ending="")

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
        raise argparse.ArgumentTypeError(
            gettext("not an ISO 8601 date or time: %(text)r") % {"text": text}
        ) from None
    if timezone.is_naive(instant):
        instant = timezone.make_aware(instant)
    if instant > timezone.now():
        raise argparse.ArgumentTypeError(
            gettext("in the future: points never expire ahead of time")
        )
    return instant
