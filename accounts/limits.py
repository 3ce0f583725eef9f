"""Caps and delays on what an attacker repeats: codes sent, codes guessed, logins.

Each check is one atomic step, so that parallel requests cannot slip past a cap
between a read and a write, and a counter can never outlive its window: in
Redis a Lua script counts and sets the expiry together (a counter recreated
without an expiry would lock its phone out for ever). DRF's throttles read,
decide and write back separately; they are no security control (docs/security.md).

Without Redis, as on the development server and in tests that move the clock,
the local-memory cache holds the counters and a lock in this process makes each
step atomic: the cache lives in one process, so the lock covers every user of it.
"""

import functools
import math
import threading
import time
from dataclasses import dataclass

import redis
from django.conf import settings
from django.core.cache import cache, caches
from django.core.cache.backends.redis import RedisCache

# Counts one event into a fixed window unless the window already holds max_count:
# 0 when counted, else the milliseconds until the window ends. A refused event is
# not counted, so hammering a full window does not keep it full for longer.
TAKE = """
local count = redis.call('INCR', KEYS[1])
if redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
if count <= tonumber(ARGV[1]) then return 0 end
redis.call('DECR', KEYS[1])
return math.max(redis.call('PTTL', KEYS[1]), 1)
"""

# Uncounts an event, never below zero and never creating a counter (one without an
# expiry would never go).
GIVE_BACK = """
local count = tonumber(redis.call('GET', KEYS[1]) or '0')
if count > 0 then redis.call('DECR', KEYS[1]) end
return 0
"""

# Counts an attempt; past ARGV[1] free ones in the window, each further attempt
# must wait for the gate (KEYS[2]), which the admitted attempt closes for twice as
# long as the one before, up to ARGV[2] ms. 0 when admitted, else the ms to wait.
ADMIT = """
local count = redis.call('INCR', KEYS[1])
if redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[3]) end
local beyond = count - tonumber(ARGV[1])
if beyond <= 0 then return 0 end
local delay = math.floor(math.min(1000 * 2 ^ (beyond - 1), tonumber(ARGV[2])))
if redis.call('SET', KEYS[2], '1', 'PX', delay, 'NX') then return 0 end
redis.call('DECR', KEYS[1])
return math.max(redis.call('PTTL', KEYS[2]), 1)
"""


@dataclass(frozen=True)
class Limit:
    """At most `max_count` events per `window_seconds` for one identity."""

    name: str
    max_count: int
    window_seconds: int

    def key(self, ident: str) -> str:
        return f"limit:{self.name}:{ident}"

    def take(self, ident: str) -> int:
        """Count one event: 0 when it fits, else the seconds until it would."""
        return _seconds(_counters().take(self.key(ident), self.max_count, self.window_seconds))

    def hit(self, ident: str) -> bool:
        """Count one event; False, counting nothing, once the window is full."""
        return self.take(ident) == 0

    def give_back(self, ident: str) -> None:
        """Uncount an event taken before, as when what it guarded turned out harmless."""
        _counters().give_back(self.key(ident))

    def count(self, ident: str) -> int:
        return _counters().count(self.key(ident))

    def clear(self, ident: str) -> None:
        _counters().clear(self.key(ident))


@dataclass(frozen=True)
class Backoff:
    """Attempts slowed down instead of refused: after `free_attempts` in the window,
    each further one must wait 1 s, then 2 s, 4 s, … up to `max_delay_seconds`
    after the last one admitted. Nobody is locked out for the whole window."""

    name: str
    free_attempts: int
    max_delay_seconds: int
    window_seconds: int

    def key(self, ident: str) -> str:
        return f"limit:{self.name}:{ident}"

    def gate_key(self, ident: str) -> str:
        return f"limit:{self.name}:gate:{ident}"

    def admit(self, ident: str) -> int:
        """Count one attempt: 0 when admitted, else the seconds to wait."""
        waiting_ms = _counters().admit(
            self.key(ident),
            self.gate_key(ident),
            self.free_attempts,
            self.max_delay_seconds * 1000,
            self.window_seconds,
        )
        return _seconds(waiting_ms)

    def give_back(self, ident: str) -> None:
        _counters().give_back(self.key(ident))


def limit_keys_without_expiry() -> list[str]:
    """Counters that would never go: there must be none (the ledger check's cousin)."""
    return _counters().keys_without_expiry()


def _seconds(milliseconds: int) -> int:
    return math.ceil(milliseconds / 1000)


def _counters():
    if isinstance(caches["default"], RedisCache):
        return _redis_counters(_redis_location())
    return LOCAL_COUNTERS


def _redis_location() -> str:
    """The cache's Redis; with replicas listed, the first, which takes the writes."""
    location = settings.CACHES["default"]["LOCATION"]
    servers = location.split(",") if isinstance(location, str) else location
    return servers[0]


@functools.cache
def _redis_counters(location: str) -> "RedisCounters":
    return RedisCounters(redis.Redis.from_url(location))


class RedisCounters:
    def __init__(self, client: redis.Redis):
        self.client = client
        self._take = client.register_script(TAKE)
        self._give_back = client.register_script(GIVE_BACK)
        self._admit = client.register_script(ADMIT)

    def take(self, key: str, max_count: int, window_seconds: int) -> int:
        return int(self._take(keys=[key], args=[max_count, window_seconds * 1000]))

    def give_back(self, key: str) -> None:
        self._give_back(keys=[key])

    def admit(self, key, gate_key, free_attempts, max_delay_ms, window_seconds) -> int:
        args = [free_attempts, max_delay_ms, window_seconds * 1000]
        return int(self._admit(keys=[key, gate_key], args=args))

    def count(self, key: str) -> int:
        return int(self.client.get(key) or 0)

    def clear(self, key: str) -> None:
        self.client.delete(key)

    def keys_without_expiry(self) -> list[str]:
        keys = self.client.scan_iter(match="limit:*", count=1000)
        return [key.decode() for key in keys if self.client.ttl(key) == -1]


class LocalCounters:
    """The same steps on the local-memory cache, each under one lock. A value is
    (count, deadline); the cache drops it at the deadline, by the clock tests move."""

    def __init__(self):
        self._lock = threading.Lock()

    def take(self, key: str, max_count: int, window_seconds: int) -> int:
        with self._lock:
            count, deadline = self._get(key, window_seconds)
            if count >= max_count:
                return max(round((deadline - time.time()) * 1000), 1)
            self._set(key, count + 1, deadline)
            return 0

    def give_back(self, key: str) -> None:
        with self._lock:
            found = cache.get(key)
            if found and found[0] > 0:
                self._set(key, found[0] - 1, found[1])

    def admit(self, key, gate_key, free_attempts, max_delay_ms, window_seconds) -> int:
        with self._lock:
            count, deadline = self._get(key, window_seconds)
            beyond = count + 1 - free_attempts
            if beyond > 0:
                gate = cache.get(gate_key)
                if gate is not None:
                    return max(round((gate[1] - time.time()) * 1000), 1)
                delay = min(1000 * 2 ** (beyond - 1), max_delay_ms) / 1000
                self._set(gate_key, 1, time.time() + delay)
            self._set(key, count + 1, deadline)
            return 0

    def count(self, key: str) -> int:
        found = cache.get(key)
        return found[0] if found else 0

    def clear(self, key: str) -> None:
        cache.delete(key)

    def keys_without_expiry(self) -> list[str]:
        # Every value is set with its deadline as the cache's timeout.
        return []

    @staticmethod
    def _get(key: str, window_seconds: int) -> tuple[int, float]:
        return cache.get(key) or (0, time.time() + window_seconds)

    @staticmethod
    def _set(key: str, count: int, deadline: float) -> None:
        cache.set(key, (count, deadline), timeout=max(deadline - time.time(), 0.001))


LOCAL_COUNTERS = LocalCounters()
