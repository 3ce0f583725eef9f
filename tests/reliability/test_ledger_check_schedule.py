"""The ledger check of docs/invariants.md runs nightly from beat, and admin shows
what its last run found."""

import re

import pytest
from celery.schedules import crontab
from django.conf import settings
from django.db.models import F

from config.celery import app as celery_app
from loyalty.models import LedgerCheckRun, Member
from loyalty.tasks import ledger_check
from tests.admin import staff_member
from tests.factories import earn

TASK = "loyalty.tasks.ledger_check"


def test_beat_sends_the_ledger_check_every_night_at_the_set_hour():
    [schedule] = [
        entry["schedule"]
        for entry in celery_app.conf.beat_schedule.values()
        if entry["task"] == TASK
    ]

    assert schedule == crontab(hour=settings.LEDGER_CHECK_HOUR, minute=0)
    assert ledger_check.name == TASK


def dashboard_check(client) -> str:
    html = client.get("/admin/dashboard/").content.decode()
    block = html.split('id="ledger-check">')[1].split('<div class="module')[0]
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", block)).strip()


@pytest.mark.django_db
def test_admin_shows_what_the_last_scheduled_check_found(store, client):
    earn(store=store, phone="+8613800138000", amount="300.00")
    earn(store=store, phone="+8613800138111", amount="120.00")
    client.force_login(staff_member("+8613900000001", "view_ledgercheckrun"))

    # when the task beat sends runs, on a whole ledger
    ledger_check.delay()

    # then the dashboard and the runs' list show it found nothing
    assert "No breaches" in dashboard_check(client)
    assert "2 members checked" in dashboard_check(client)
    first = LedgerCheckRun.objects.get()
    runs = client.get("/admin/loyalty/ledgercheckrun/").content.decode()
    assert f"/admin/loyalty/ledgercheckrun/{first.pk}/change/" in runs

    # when a balance no longer matches its entries and the next night's check runs
    Member.objects.filter(phone="+8613800138111").update(balance=F("balance") + 5)
    ledger_check.delay()

    # then the dashboard shows the newer run with its breaches
    shown = dashboard_check(client)
    assert re.match(r"Last ledger check \d+ breach", shown), shown
    assert LedgerCheckRun.objects.first().breach_count > 0
