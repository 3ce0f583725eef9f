"""A store key's last use, shown to staff: written at most once a minute per key, so
the API's hot path reads the key and almost never writes it."""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

from core.api.authentication import record_key_use
from loyalty.models import StoreAPIKey
from loyalty.services.stores import KEY_MEMORY_SECONDS, store_api_key_revoke

pytestmark = pytest.mark.django_db

SHANGHAI = ZoneInfo("Asia/Shanghai")
LOOKUP = "/api/v1/members/lookup"
START = datetime(2026, 7, 6, 10, 0, tzinfo=SHANGHAI)


def look_up(client):
    return client.post(LOOKUP, {"phone": "+8613800138000"}, format="json")


def key_of(store) -> StoreAPIKey:
    return StoreAPIKey.objects.get(store=store)


def key_writes(queries) -> list[str]:
    return [q["sql"] for q in queries if q["sql"].startswith("UPDATE") and "apikey" in q["sql"]]


def test_a_new_key_was_never_used(store):
    assert key_of(store).last_used_at is None


def test_the_first_call_records_the_use(store, store_client):
    with time_machine.travel(START, tick=False):
        assert look_up(store_client).status_code == 404  # no such member; the key worked
    assert key_of(store).last_used_at == START


def test_calls_within_a_minute_do_not_write_the_key(store, store_client):
    with time_machine.travel(START, tick=False):
        look_up(store_client)
    soon = START + timedelta(seconds=59)
    with time_machine.travel(soon, tick=False), CaptureQueriesContext(connection) as queries:
        assert look_up(store_client).status_code == 404
    assert key_writes(queries.captured_queries) == []
    assert key_of(store).last_used_at == START


def test_a_call_a_minute_later_records_the_use_again(store, store_client):
    with time_machine.travel(START, tick=False):
        look_up(store_client)
    later = START + timedelta(seconds=61)
    with time_machine.travel(later, tick=False), CaptureQueriesContext(connection) as queries:
        look_up(store_client)
    assert len(key_writes(queries.captured_queries)) == 1
    assert key_of(store).last_used_at == later


def test_a_parallel_request_that_read_the_key_before_does_not_write_again(store):
    """Two requests read the key while it was stale; the first writes, the second's
    conditional UPDATE finds the row fresh and leaves it."""
    first, second = key_of(store), key_of(store)
    with time_machine.travel(START, tick=False):
        record_key_use(first)
    with time_machine.travel(START + timedelta(seconds=5), tick=False):
        record_key_use(second)
    assert key_of(store).last_used_at == START


def test_a_refused_key_records_nothing(store, store_client):
    StoreAPIKey.objects.filter(store=store).update(revoked=True)
    assert look_up(store_client).status_code == 401
    assert key_of(store).last_used_at is None


def test_a_key_revoked_by_another_worker_stops_working_within_seconds(store, store_client):
    # Given a key this worker has just verified
    with time_machine.travel(START, tick=False):
        assert look_up(store_client).status_code == 404
    # When another worker revokes it (a plain UPDATE: nothing reaches this worker's memory)
    StoreAPIKey.objects.filter(store=store).update(revoked=True)

    # Then this worker still remembers it for a few seconds, and refuses it after them
    with time_machine.travel(START + timedelta(seconds=KEY_MEMORY_SECONDS - 1), tick=False):
        assert look_up(store_client).status_code == 404
    with time_machine.travel(START + timedelta(seconds=KEY_MEMORY_SECONDS), tick=False):
        assert look_up(store_client).status_code == 401


def test_a_key_revoked_in_this_worker_stops_working_at_once(store, store_client):
    with time_machine.travel(START, tick=False):
        assert look_up(store_client).status_code == 404
        assert store_api_key_revoke(api_key=key_of(store))

        assert look_up(store_client).status_code == 401


def test_a_remembered_key_is_read_once_per_window(store, store_client):
    with time_machine.travel(START, tick=False):
        look_up(store_client)
        with CaptureQueriesContext(connection) as queries:
            look_up(store_client)
    assert not [q for q in queries.captured_queries if "storeapikey" in q["sql"]]
