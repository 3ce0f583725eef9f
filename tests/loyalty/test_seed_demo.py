"""The demo data `dev.py start` loads: the demo store's key is the same on every start
of a checkout, so a key pasted into a shell or a POS keeps working across restarts."""

import stat
from io import StringIO

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from loyalty.models import StoreAPIKey

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
