"""The ledger check of docs/invariants.md runs nightly from beat, and admin shows
what its last run found."""

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.db.models import F

from loyalty.models import LedgerCheckRun, Member
from loyalty.tasks import ledger_check
from tests.admin import staff_member
from tests.beat import beat_started_at
from tests.factories import earn

TASK = "loyalty.tasks.ledger_check"
SHANGHAI = ZoneInfo("Asia/Shanghai")  # the merchant's time zone, TIME_ZONE's default


@pytest.mark.services
@pytest.mark.django_db
def test_beat_runs_the_ledger_check_once_a_night_at_the_set_hour(store):
    earn(store=store, phone="+8613800138000", amount="300.00")
    night = datetime(2026, 7, 7, settings.LEDGER_CHECK_HOUR, 0, tzinfo=SHANGHAI)

    with beat_started_at(night - timedelta(hours=1)) as beat:
        # nothing until the set hour
        beat.run_until(night - timedelta(seconds=1))
        assert TASK not in beat.sent
        assert not LedgerCheckRun.objects.exists()

        # then one check, run on the whole ledger, and no other that night
        beat.run_until(night + timedelta(hours=1))
        assert beat.sent.count(TASK) == 1
        [run] = LedgerCheckRun.objects.all()
        assert (run.members_checked, run.breach_count) == (1, 0)
        assert night <= run.started_at < night + timedelta(minutes=1)  # beat woke each minute

        # and the next one a day later
        beat.run_until(night + timedelta(days=1, minutes=1), step=timedelta(minutes=10))
        assert beat.sent.count(TASK) == 2
        assert LedgerCheckRun.objects.count() == 2


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
