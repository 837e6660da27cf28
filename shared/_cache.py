"""The one bounded cache: a dict that forgets its oldest entry when full (FIFO).

Used where a value, once known, stays true for a while (the gateway's token decisions, which add
their own expiry; facturation's completed Stripe customers). Insertion order is the eviction
order: cheap, predictable, and good enough when entries age at the same pace. Not thread-safe;
each event loop owns its own. ``RememberedRefusals`` builds on it: refusals kept until their
``Retry-After`` passes (auth's registration limit, and the gateway in front of it).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["BoundedCache", "RememberedRefusals"]

K = TypeVar("K")
V = TypeVar("V")


class BoundedCache(Generic[K, V]):
    """At most ``max_entries`` values; adding one more drops the oldest."""

    __slots__ = ("_entries", "max_entries")

    def __init__(self, max_entries: int) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self.max_entries = max_entries
        self._entries: dict[K, V] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def get(self, key: K) -> V | None:
        return self._entries.get(key)

    def put(self, key: K, value: V) -> None:
        """Store ``value``; a new key in a full cache first evicts the oldest entry."""
        if key not in self._entries and len(self._entries) >= self.max_entries:
            del self._entries[next(iter(self._entries))]
        self._entries[key] = value

    def discard(self, key: K) -> None:
        self._entries.pop(key, None)


class RememberedRefusals:
    """Refusals an authority made (a 429 and its ``Retry-After``), repeated from memory until
    they expire, so a client that keeps knocking costs no round trip to the authority.

    The memory never refuses what the authority did not: it only repeats a refusal, for no
    longer than the authority said. Bounded: past ``max_entries`` the oldest is forgotten, and
    that key is asked about again.
    """

    __slots__ = ("_clock", "_until")

    def __init__(self, max_entries: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._until: BoundedCache[str, float] = BoundedCache(max_entries)
        self._clock = clock

    @property
    def max_entries(self) -> int:
        return self._until.max_entries

    def __len__(self) -> int:
        return len(self._until)

    def remember(self, key: str, seconds: float) -> None:
        """``key`` was refused for ``seconds`` from now."""
        if seconds > 0:
            self._until.put(key, self._clock() + seconds)

    def remaining(self, key: str) -> float | None:
        """Seconds until ``key``'s refusal expires; ``None`` when there is none (or no more)."""
        until = self._until.get(key)
        if until is None:
            return None
        left = until - self._clock()
        if left <= 0:
            self._until.discard(key)
            return None
        return left
