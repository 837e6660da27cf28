"""The request id: taken from ``X-Request-ID`` when well-formed, else minted, carried in a
contextvar so logs and outgoing calls repeat it."""

from __future__ import annotations

import random
import re
from contextvars import ContextVar

__all__ = ["REQUEST_ID_HEADER", "accept_request_id", "current_request_id", "request_id_var"]

REQUEST_ID_HEADER = "X-Request-ID"
_ACCEPTABLE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)


def accept_request_id(incoming: str | None) -> str:
    """Keep a caller's id only if it is short and plain (it ends up in logs); else mint one."""
    if incoming and _ACCEPTABLE.match(incoming):
        return incoming
    # 32 hex digits, as uuid4().hex gave, without a getrandom system call per request: an
    # id correlates log lines, it protects nothing.
    return f"{random.getrandbits(128):032x}"


def current_request_id() -> str | None:
    return request_id_var.get()
