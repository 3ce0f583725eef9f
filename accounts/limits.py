"""Caps on sending codes and on failed logins: fixed-window counters in the
cache, which is Redis in production, where SET NX and INCR are atomic across
every web worker. (DRF's throttles read, decide and write back separately, so
concurrent requests slip through; they are no security control.)"""

from dataclasses import dataclass

from django.core.cache import cache


@dataclass(frozen=True)
class Limit:
    name: str
    max_count: int
    window_seconds: int

    def _key(self, ident: str) -> str:
        return f"limit:{self.name}:{ident}"

    def hit(self, ident: str) -> bool:
        """Count one more event; False once the window already holds max_count."""
        return self._increment(self._key(ident)) <= self.max_count

    def reached(self, ident: str) -> bool:
        """Whether the window is full, without counting anything."""
        return (cache.get(self._key(ident)) or 0) >= self.max_count

    def clear(self, ident: str) -> None:
        cache.delete(self._key(ident))

    def _increment(self, key: str) -> int:
        cache.add(key, 0, timeout=self.window_seconds)
        try:
            return cache.incr(key)
        except ValueError:
            # The window ended between add and incr: this event opens a new one.
            cache.add(key, 0, timeout=self.window_seconds)
            return cache.incr(key)
