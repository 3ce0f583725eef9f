import os

from celery import Celery
from celery.schedules import crontab
from django.conf import settings

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("loyalty")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

app.conf.beat_schedule = {
    # Sends what a kick after commit missed, retries that came due, and heads whose
    # worker died mid-send once their lease runs out.
    "send-webhooks": {
        "task": "webhooks.tasks.deliveries_send",
        "schedule": 30.0,
    },
    "prune-webhook-events-daily": {
        "task": "webhooks.tasks.events_prune",
        "schedule": crontab(hour=4, minute=30),
    },
    "requeue-stranded-sms": {
        "task": "accounts.tasks.sms_requeue_stranded",
        "schedule": 60.0,
    },
    "release-expired-holds": {
        "task": "loyalty.tasks.holds_release",
        "schedule": 60.0,
    },
    "check-ledger-nightly": {
        "task": "loyalty.tasks.ledger_check",
        "schedule": crontab(hour=settings.LEDGER_CHECK_HOUR, minute=0),
    },
    "expire-points-daily": {
        "task": "loyalty.tasks.points_expire",
        "schedule": crontab(hour=settings.EXPIRY_RUN_HOUR, minute=settings.EXPIRY_RUN_MINUTE),
    },
    "pay-birthday-bonuses-hourly": {
        "task": "loyalty.tasks.birthday_bonuses_pay",
        "schedule": crontab(minute=settings.BIRTHDAY_RUN_MINUTE),
    },
    "send-expiry-reminders-daily": {
        "task": "loyalty.tasks.expiry_reminders_send",
        "schedule": crontab(hour=settings.EXPIRY_REMINDER_HOUR, minute=0),
    },
}
