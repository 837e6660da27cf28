from __future__ import annotations

import pytest

from shared import BoundedCache


def test_a_full_cache_forgets_its_oldest_entry_first() -> None:
    cache: BoundedCache[str, int] = BoundedCache(max_entries=2)
    cache.put("a", 1)
    cache.put("b", 2)
    cache.put("c", 3)
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (None, 2, 3)
    assert len(cache) == 2


def test_replacing_a_value_evicts_nothing() -> None:
    cache: BoundedCache[str, int] = BoundedCache(max_entries=2)
    cache.put("a", 1)
    cache.put("b", 2)
    cache.put("a", 10)
    assert (cache.get("a"), cache.get("b")) == (10, 2)


def test_a_discarded_entry_is_gone_and_discarding_twice_is_harmless() -> None:
    cache: BoundedCache[str, int] = BoundedCache(max_entries=2)
    cache.put("a", 1)
    cache.discard("a")
    cache.discard("a")
    assert "a" not in cache
    assert cache.get("a") is None


def test_a_cache_holds_at_least_one_entry() -> None:
    with pytest.raises(ValueError, match="max_entries"):
        BoundedCache[str, int](max_entries=0)
