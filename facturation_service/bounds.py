"""Bounds checked before a value reaches the database: every integer column is 64 bits, so a
larger number from a client or a signed event is refused here, never by a failed statement."""

from __future__ import annotations

from collections.abc import Mapping

from shared import ClientError, UnprocessableError

__all__ = ["INT64_MAX", "INT64_MIN", "check_int64"]

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1


def check_int64(
    values: Mapping[str, int | None], *, error: type[ClientError] = UnprocessableError
) -> None:
    """Raises ``error`` naming the first value outside a signed 64-bit integer (``None`` passes)."""
    for name, value in values.items():
        if value is not None and not INT64_MIN <= value <= INT64_MAX:
            raise error(f"{name} is outside the 64-bit integer range.")
