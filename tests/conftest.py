"""Shared fixtures. The test command (python3 dev.py test) points DATABASE_URL and
REDIS_URL at private servers it starts, unless they are set. Run without it, on no
Redis, the tests marked `services` are skipped, saying why; without Debian's Chromium
the tests marked `browser` are skipped too, and without its nginx the tests of the
compose stack's proxy.
With LOYALTY_REQUIRE_SERVICES=1 (as in CI) a missing service or browser fails the run instead."""

import os
import socket
from pathlib import Path
from urllib.parse import urlparse

import pytest
from django.core.cache import cache
from django.test import Client
from django.utils import translation
from django_otp import DEVICE_ID_SESSION_KEY
from rest_framework.test import APIClient

from accounts.limits import limit_keys_without_expiry
from accounts.sms import backends as sms_backends
from accounts.staff_otp import staff_otp_required
from config.celery import app as celery_app
from loyalty.services.purchases import forget_rules_in_force
from loyalty.services.stores import store_create
from tests.staff_otp import authenticator_app

REQUIRE_SERVICES = os.environ.get("LOYALTY_REQUIRE_SERVICES") == "1"
# Debian's package (apt-get install chromium); Playwright's own browser download fails here.
CHROMIUM = Path("/usr/bin/chromium")
# Debian's nginx runs the compose stack's proxy configuration (tests/reliability).
NGINX = Path("/usr/sbin/nginx")


def redis_reachable() -> bool:
    url = os.environ.get("REDIS_URL")
    if not url:
        return False
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname, parsed.port or 6379), timeout=1):
            return True
    except OSError:
        return False


def pytest_sessionstart(session):
    if not REQUIRE_SERVICES:
        return
    missing = []
    if not redis_reachable():
        missing.append("Redis (REDIS_URL)")
    if not CHROMIUM.exists():
        missing.append(f"Chromium ({CHROMIUM}, from Debian's chromium package)")
    if not NGINX.exists():
        missing.append(f"nginx ({NGINX}, from Debian's nginx-light package)")
    if missing:
        pytest.exit(
            "LOYALTY_REQUIRE_SERVICES=1 but these are not available: " + ", ".join(missing),
            returncode=3,
        )


def pytest_configure(config):
    # Tasks run in the test's own process unless a test starts real workers.
    celery_app.conf.task_always_eager = True
    celery_app.conf.task_eager_propagates = True


@pytest.fixture(autouse=True)
def _fresh_outbox_and_counters(settings):
    """Texts go to a list the test can read; rate-limit counters start at zero, and
    after every test none is left without an expiry (it would lock its phone out
    for ever)."""
    settings.SMS_BACKEND = "locmem"
    sms_backends.outbox.clear()
    cache.clear()
    yield
    assert limit_keys_without_expiry() == []


@pytest.fixture(autouse=True)
def _webhooks_reach_the_test_receiver(settings):
    """Test receivers listen on plain http at 127.0.0.1, which production refuses."""
    settings.WEBHOOKS_ALLOW_HTTP = True
    settings.WEBHOOKS_ALLOWED_NETWORKS = ["127.0.0.1/32"]


@pytest.fixture(autouse=True)
def _earning_rules_read_afresh():
    """A process remembers the earning rules by the program's version of them, which
    only grows in production. Each test's rules are rolled back, and the next test's
    may reach the same version with other rules: each test starts reading them afresh."""
    forget_rules_in_force()


@pytest.fixture(autouse=True)
def _default_language_after_each_test():
    """LocaleMiddleware leaves the language of a request's Accept-Language active in the
    thread; the next test starts in the shop's own language, whatever the last one asked."""
    yield
    translation.deactivate()


@pytest.fixture
def sms_outbox():
    return sms_backends.outbox


def pytest_collection_modifyitems(config, items):
    has_redis = redis_reachable()
    skip_services = pytest.mark.skip(
        reason="needs Redis (REDIS_URL) to run gunicorn, a Celery worker and beat"
    )
    skip_browser = pytest.mark.skip(
        reason=f"needs Chromium at {CHROMIUM}: apt-get install chromium (as .ci/run does)"
    )
    for item in items:
        if "services" in item.keywords and not has_redis:
            item.add_marker(skip_services)
        if "browser" in item.keywords and not CHROMIUM.exists():
            item.add_marker(skip_browser)


@pytest.fixture
def store_and_key(db):
    return store_create(name="Web shop")


@pytest.fixture
def store(store_and_key):
    return store_and_key[0]


@pytest.fixture
def store_client(store_and_key):
    """An API client that speaks as the 'Web shop' store."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {store_and_key[1]}")
    return client


@pytest.fixture
def other_store_client(db):
    _store, key = store_create(name="POS counter")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
    return client


class StaffClient(Client):
    """Django's test client, whose `force_login` stands for admin's whole login: staff who
    must have a second factor (accounts/staff_otp.py) get an authenticator app, and the
    session counts as verified by it. Tests of the login itself post its forms."""

    def force_login(self, user, backend=None):
        super().force_login(user, backend)
        if staff_otp_required(user):
            session = self.session
            session[DEVICE_ID_SESSION_KEY] = authenticator_app(user).persistent_id
            session.save()


@pytest.fixture
def client():
    return StaffClient()
