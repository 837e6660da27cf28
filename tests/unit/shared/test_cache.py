from __future__ import annotations

import pytest

from shared import BoundedCache, RememberedRefusals


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


def test_a_remembered_refusal_counts_down_and_is_forgotten_when_it_expires() -> None:
    now = [100.0]
    refusals = RememberedRefusals(10, clock=lambda: now[0])
    refusals.remember("203.0.113.7", 30)

    assert refusals.remaining("203.0.113.7") == 30
    assert refusals.remaining("198.51.100.9") is None
    now[0] += 29.5
    assert refusals.remaining("203.0.113.7") == 0.5
    now[0] += 0.5
    assert refusals.remaining("203.0.113.7") is None
    assert len(refusals) == 0


def test_remembered_refusals_are_bounded_and_never_invented() -> None:
    refusals = RememberedRefusals(2, clock=lambda: 0.0)
    refusals.remember("a", 0)  # no time to wait: nothing to remember
    for key in ("b", "c", "d"):
        refusals.remember(key, 60)

    assert refusals.remaining("a") is None
    assert refusals.remaining("b") is None  # the oldest, forgotten: asked about again
    assert refusals.remaining("d") == 60
    assert len(refusals) == 2 == refusals.max_entries
