"""How a benchmark measured in rounds is judged: on its median round, by one figure."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

__all__ = ["median_round"]

T = TypeVar("T")


def median_round(rounds: Sequence[T], figure: Callable[[T], float]) -> T:
    """The round whose ``figure`` is the median; of an even number of rounds, the lower middle
    one (a verdict not to flatter)."""
    return sorted(rounds, key=figure)[(len(rounds) - 1) // 2]
