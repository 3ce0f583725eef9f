import logging

from celery import shared_task
from django.utils import timezone

from loyalty.services import birthdays, expiry_job, reminders
from loyalty.services.ledger_check import ledger_check_run
from loyalty.services.redemptions import redemptions_release_expired

logger = logging.getLogger(__name__)


@shared_task(name="loyalty.tasks.ledger_check")
def ledger_check() -> int:
    """Nightly: check every invariant and keep the result; log loudly on a breach."""
    run = ledger_check_run()
    if run.breach_count:
        logger.error("ledger check found %d breaches (run %d)", run.breach_count, run.pk)
    else:
        logger.info("ledger check: %d members, no breach", run.members_checked)
    return run.pk


@shared_task(name="loyalty.tasks.holds_release")
def holds_release() -> int:
    """Every minute: give back the points of checkout holds nobody committed in time."""
    return redemptions_release_expired(as_of=timezone.now())


@shared_task(name="loyalty.tasks.points_expire")
def points_expire() -> int:
    """Daily: expire the points past their expiry date; returns how many lots.

    Safe to run twice or in parallel, and after a worker died mid-run: what was
    expired stays expired once, what was not is expired now."""
    run = expiry_job.points_expire(as_of=timezone.now())
    logger.info("expiry run: %s", run.summary())
    return run.lots


@shared_task(name="loyalty.tasks.expiry_reminders_send")
def expiry_reminders_send() -> int:
    """Daily: text members whose points expire soon, once per member and date."""
    queued = reminders.expiry_reminders_send()
    logger.info("expiry reminders: %d texts queued", queued)
    return queued


@shared_task(name="loyalty.tasks.birthday_bonuses_pay")
def birthday_bonuses_pay() -> int:
    """Hourly: pay the birthday bonus of the customers born on today's local day, once
    per member and year; the runs after the first find them paid."""
    run = birthdays.birthday_bonuses_pay(at=timezone.now())
    logger.info("birthday run: %s", run.summary())
    return run.paid
