"""The one bounded cache: a dict that forgets its oldest entry when full (FIFO).

Used where a value, once known, stays true for a while (the gateway's token decisions, which add
their own expiry; facturation's completed Stripe customers). Insertion order is the eviction
order: cheap, predictable, and good enough when entries age at the same pace. Not thread-safe;
each event loop owns its own.
"""

from __future__ import annotations

from typing import Generic, TypeVar

__all__ = ["BoundedCache"]

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
