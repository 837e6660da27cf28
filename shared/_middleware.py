"""The ASGI middleware every service runs: request id in, request id out, one access log (first);
a refused CORS preflight as problem+json (where CORS is configured); and RFC 9112's Host rule
(after routing)."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from litestar.enums import ScopeType

from shared._exceptions import BadRequestError
from shared._problems import send_problem
from shared._request_id import REQUEST_ID_HEADER, accept_request_id, request_id_var

if TYPE_CHECKING:
    from collections.abc import Iterable

    from litestar.types import ASGIApp, HTTPResponseStartEvent, Message, Receive, Scope, Send

__all__ = [
    "PreflightRefusalProblem",
    "RequestIdMiddleware",
    "RequireHost",
    "log_exchange",
    "with_request_id",
]

_HEADER = REQUEST_ID_HEADER.lower().encode()
access_logger = logging.getLogger("access")


def with_request_id(message: HTTPResponseStartEvent, request_id: bytes) -> None:
    """Set ``X-Request-ID`` on an ``http.response.start`` message (replacing any other)."""
    headers = [(n, v) for n, v in message.get("headers", []) if n != _HEADER]
    headers.append((_HEADER, request_id))
    message["headers"] = headers


def log_exchange(scope: Scope, status: int, started: float) -> None:
    """The access log line of one exchange (``started``: ``time.perf_counter()`` at its start)."""
    if access_logger.isEnabledFor(logging.INFO):
        access_logger.info(
            "request",
            extra={
                "method": scope.get("method", ""),
                "path": scope["path"],
                "status": status,
                "duration_ms": round((time.perf_counter() - started) * 1000, 3),
            },
        )


class RequestIdMiddleware:
    """Accepts or mints ``X-Request-ID``, echoes it on the response and logs the exchange."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        incoming = None
        for name, value in scope["headers"]:
            if name == _HEADER:
                incoming = value.decode("latin-1")
                break
        request_id = accept_request_id(incoming)
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                with_request_id(message, request_id.encode())
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            log_exchange(scope, status, started)
            request_id_var.reset(token)


class RequireHost:
    """RFC 9112 §3.2: an HTTP/1.1 request without ``Host`` is answered 400, on every route of
    every service (Litestar middleware runs after routing: a path no route has is 404 first)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == ScopeType.HTTP
            and scope.get("http_version") == "1.1"
            and not any(name == b"host" for name, _ in scope["headers"])
        ):
            raise BadRequestError("An HTTP/1.1 request must carry a Host header.")
        await self.app(scope, receive, send)


PREFLIGHT_REFUSED = (
    "This cross-origin request is not allowed: its origin, method or headers are not among those"
    " the CORS policy allows."
)


class PreflightRefusalProblem:
    """A CORS preflight the policy refuses, answered as every other 4xx: a 400 by the app's
    problem handlers (:func:`send_problem`). Litestar's CORS middleware (inside this one) writes
    it as plain text (``Disallowed CORS Origin``); any other answer passes unchanged."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != ScopeType.HTTP
            or scope["method"] != "OPTIONS"
            or not _asks_cors(scope["headers"])
        ):
            await self.app(scope, receive, send)
            return
        refused = False

        async def send_as_problem(message: Message) -> None:
            nonlocal refused
            if message["type"] == "http.response.start" and _plain_refusal(message):
                refused = True
                return
            if not refused:
                await send(message)
            elif not message.get("more_body", False):  # the plain text is all sent: replaced
                await send_problem(scope, receive, send, BadRequestError(PREFLIGHT_REFUSED))

        await self.app(scope, receive, send_as_problem)


def _asks_cors(headers: Iterable[tuple[bytes, bytes]]) -> bool:
    """A preflight, as Litestar's CORS middleware tells one: ``Origin`` and
    ``Access-Control-Request-Method``."""
    names = {name for name, _ in headers}
    return b"origin" in names and b"access-control-request-method" in names


def _plain_refusal(start: HTTPResponseStartEvent) -> bool:
    content_type = dict(start.get("headers", ())).get(b"content-type", b"")
    return start["status"] == 400 and content_type.startswith(b"text/plain")
