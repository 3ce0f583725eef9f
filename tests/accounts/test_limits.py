"""The counters behind every cap: one atomic step each, never a counter without an
expiry, never more events through than the cap, in Redis and in local memory."""

import os
import time

import pytest
import redis
from django.core.cache import cache

from accounts.limits import Backoff, Limit, limit_keys_without_expiry
from tests.concurrency import run_together

PHONES = [f"+86137{n:08d}" for n in range(30)]


@pytest.fixture(params=["redis", "local memory"])
def counters(request, settings):
    """Each test runs on both kinds of counters."""
    if request.param == "local memory":
        settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    elif not os.environ.get("REDIS_URL"):
        pytest.skip("needs Redis (REDIS_URL)")
    cache.clear()
    return request.param


@pytest.mark.services
def test_hits_raced_across_window_edges_leave_no_counter_without_an_expiry():
    """The attack: bursts timed at the end of a window. Checking that the key exists and
    then incrementing it recreated a key that expired in between, with no expiry, and
    its phone got 429 for ever."""
    limit = Limit("edge-race", 1_000_000, 1)
    stop = time.monotonic() + 3.5

    def hammer():
        hits = 0
        while time.monotonic() < stop:
            for phone in PHONES:
                limit.hit(phone)
                hits += 1
        return hits

    hits = sum(run_together([hammer] * 8))

    assert hits > 3 * len(PHONES), "the race needs hits across several window edges"
    client = redis.Redis.from_url(os.environ["REDIS_URL"])
    forever = [key for key in client.scan_iter(match="*limit:*") if client.ttl(key) == -1]
    assert forever == []


def test_parallel_hits_never_overshoot_a_cap(counters):
    limit = Limit("parallel", 5, 60)

    allowed = run_together([lambda: limit.hit(PHONES[0])] * 20)

    assert allowed.count(True) == 5
    assert limit.count(PHONES[0]) == 5


def test_a_refused_event_is_not_counted(counters):
    limit = Limit("refused", 2, 60)
    assert [limit.hit(PHONES[0]) for _ in range(5)] == [True, True, False, False, False]

    limit.give_back(PHONES[0])

    # Refusals did not pile up: one given back makes room for exactly one
    assert [limit.hit(PHONES[0]) for _ in range(2)] == [True, False]


def test_a_refusal_says_how_long_until_the_window_ends(counters):
    limit = Limit("wait", 1, 600)
    assert limit.take(PHONES[0]) == 0

    assert 599 <= limit.take(PHONES[0]) <= 600


def test_giving_back_never_goes_below_zero_nor_creates_a_counter(counters):
    limit = Limit("give-back", 1, 60)

    limit.give_back(PHONES[0])
    limit.hit(PHONES[1])
    limit.give_back(PHONES[1])
    limit.give_back(PHONES[1])

    assert limit.count(PHONES[0]) == limit.count(PHONES[1]) == 0
    assert limit_keys_without_expiry() == []
    assert [limit.hit(PHONES[1]) for _ in range(2)] == [True, False]


def test_parallel_attempts_past_the_free_ones_are_admitted_one_at_a_time(counters):
    backoff = Backoff("parallel-backoff", free_attempts=3, max_delay_seconds=60, window_seconds=60)

    waits = run_together([lambda: backoff.admit(PHONES[0])] * 20)

    # Three free, one more that closes the gate for a second, the rest told to wait
    assert waits.count(0) == 4
    assert all(wait == 1 for wait in waits if wait)
