import sys

from django.core.management.base import BaseCommand, CommandError

from loyalty.models import Member
from loyalty.services.ledger_check import ledger_check_run


class Command(BaseCommand):
    help = "Check every invariant of the points ledger for every member; exit 1 on any breach."

    def handle(self, *args, **options):
        total = Member.objects.count()
        done = [0]

        def show_progress(members: int) -> None:
            done[0] += members
            if sys.stderr.isatty():
                self.stderr.write(f"\rchecked {done[0]:,} of {total:,} members", ending="")

        run = ledger_check_run(on_chunk=show_progress)
        if sys.stderr.isatty():
            self.stderr.write("")
        for breach in run.breaches:
            self.stdout.write(
                f"member {breach['member_id']}: invariant {breach['invariant']}: {breach['detail']}"
            )
        summary = (
            f"{run.members_checked:,} members checked, {run.breach_count:,} breaches "
            f"in {(run.finished_at - run.started_at).total_seconds():.1f}s"
        )
        if run.breach_count:
            raise CommandError(summary)
        self.stdout.write(self.style.SUCCESS(summary))
