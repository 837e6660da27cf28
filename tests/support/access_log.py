"""The services' access log as a test reads it: each line's path and status, with the request
id in force when it was written."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from shared import current_request_id

__all__ = ["AccessLines", "access_lines"]


class AccessLines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[tuple[str, int, str | None]] = []

    def emit(self, record: logging.LogRecord) -> None:
        path, status = record.path, record.status  # type: ignore[attr-defined]
        self.lines.append((path, status, current_request_id()))


@contextmanager
def access_lines() -> Iterator[AccessLines]:
    """The access log's lines written meanwhile (the log at INFO, whatever it was before)."""
    access = logging.getLogger("access")
    handler = AccessLines()
    access.addHandler(handler)
    level = access.level
    access.setLevel(logging.INFO)
    try:
        yield handler
    finally:
        access.removeHandler(handler)
        access.setLevel(level)
