import sys

from django.core.management.base import CommandError
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from loyalty.management.base import TranslatedCommand
from loyalty.models import Member
from loyalty.services.ledger_check import ledger_check_run


class Command(TranslatedCommand):
    help = _("Check every invariant of the points ledger for every member; exit 1 on any breach.")

    def handle(self, *args, **options):
        total = Member.objects.count()
        done = [0]

        def show_progress(members: int) -> None:
            done[0] += members
            if sys.stderr.isatty():
                progress = gettext("checked %(done)s of %(total)s members")
                self.stderr.write(
                    "\r" + progress % {"done": f"{done[0]:,}", "total": f"{total:,}"}, ending=""
                )

        run = ledger_check_run(on_chunk=show_progress)
        if sys.stderr.isatty():
            self.stderr.write("")
        for breach in run.breaches:
            self.stdout.write(
                gettext("member %(member)s: invariant %(invariant)s: %(detail)s")
                % {
                    "member": breach["member_id"],
                    "invariant": breach["invariant"],
                    "detail": breach["detail"],
                }
            )
        summary = gettext("%(members)s members checked, %(breaches)s breaches in %(seconds)ss") % {
            "members": f"{run.members_checked:,}",
            "breaches": f"{run.breach_count:,}",
            "seconds": f"{(run.finished_at - run.started_at).total_seconds():.1f}",
        }
        if run.breach_count:
            raise CommandError(summary)
        self.stdout.write(self.style.SUCCESS(summary))
