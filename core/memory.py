import time
from collections.abc import Hashable


class BriefMemory:
    """Values a worker remembers for a few seconds, so a hot path need not read them
    from the database on every request. Only for values whose change may take effect
    that late in other processes; the owner forgets everything when one changes here.
    """

    def __init__(self, *, seconds: float, most: int = 10_000):
        self.seconds = seconds
        self.most = most
        self._entries: dict[Hashable, tuple[float, object]] = {}

    def recall(self, key: Hashable):
        """The value remembered for `key`, or None when there is none or it is too old."""
        entry = self._entries.get(key)
        if entry is None or entry[0] <= time.time():
            return None
        return entry[1]

    def remember(self, key: Hashable, value) -> None:
        if len(self._entries) >= self.most:
            self._forget_the_old()
        self._entries[key] = (time.time() + self.seconds, value)

    def forget_all(self) -> None:
        self._entries.clear()

    def _forget_the_old(self) -> None:
        now = time.time()
        self._entries = {key: entry for key, entry in self._entries.items() if entry[0] > now}
        if len(self._entries) >= self.most:
            self._entries.clear()
