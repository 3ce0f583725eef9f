"""The demo data `dev.py start` loads: the demo store's key is the same on every start
of a checkout, so a key pasted into a shell or a POS keeps working across restarts."""

import stat
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone
from rest_framework.test import APIClient

from loyalty.models import EarningRule, EventRule, Member, Purchase, StoreAPIKey
from loyalty.services.events import EventReport, event_record

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _demo_checkout(settings, tmp_path, monkeypatch):
    settings.VAR_DIR = tmp_path
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    monkeypatch.setenv("DEMO_STAFF_PASSWORD", "a demo passphrase 2026")


def start() -> str:
    """The key one start of the demo prints, alone on its last line."""
    output = StringIO()
    call_command("seed_demo", stdout=output)
    return output.getvalue().splitlines()[-1]


def lookup(key: str):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
    return client.post("/api/v1/members/lookup", {"phone": "+8613800000001"}, format="json")


def test_the_demo_key_survives_a_restart(tmp_path):
    first = start()

    second = start()

    assert second == first
    assert lookup(first).status_code == 200
    key_file = tmp_path / "demo-store-key"
    assert key_file.read_text().strip() == first
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600


def test_a_key_the_database_no_longer_takes_is_replaced_and_the_old_one_revoked(tmp_path):
    first = start()
    StoreAPIKey.objects.update(revoked=True)

    second = start()

    assert second != first
    assert lookup(second).status_code == 200
    assert lookup(first).status_code == 401
    assert (tmp_path / "demo-store-key").read_text().strip() == second


def test_a_lost_key_file_gets_a_new_key_and_the_old_one_stops_working(tmp_path):
    first = start()
    (tmp_path / "demo-store-key").unlink()

    second = start()

    assert second != first
    assert lookup(first).status_code == 401
    assert lookup(second).status_code == 200


def test_the_demo_has_weekend_rules_at_its_store_and_a_restart_keeps_a_managers_edit():
    start()
    weekends = EarningRule.objects.get(name_en="Double points on weekends")
    # The demo's purchases came before its rules: the flat rate, whatever the day.
    assert [purchase.points_earned for purchase in Purchase.objects.order_by("id")] == [
        300,
        128,
        1999,
        59,
        860,
    ]
    assert [store.name for store in weekends.stores.all()] == ["Demo store"]
    assert EarningRule.objects.get(kind="exclusion").categories == ["tobacco"]
    weekends.multiplier = 3
    weekends.save()

    start()

    assert EarningRule.objects.count() == 2
    assert EarningRule.objects.get(name_en="Double points on weekends").multiplier == 3


def test_the_demo_rewards_events_and_pays_a_review_once_a_day():
    start()
    member = Member.objects.get(phone="+8613800000001")
    before = member.balance

    reviews = [review_paid(member, external_id) for external_id in ("REVIEW-1", "REVIEW-2")]

    on = set(EventRule.objects.filter(is_active=True).values_list("event_type", flat=True))
    assert on == {"signup", "birthday", "profile_completed", "checkin", "review_written"}
    assert reviews == [20, 0]
    member.refresh_from_db()
    assert member.balance == before + 20


def review_paid(member: Member, external_id: str) -> int:
    report = EventReport(
        event_type="review_written", external_id=external_id, occurred_at=timezone.now()
    )
    return event_record(member_id=member.pk, report=report)[0].points
