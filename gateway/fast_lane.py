"""The lane proxied requests take: straight from the ASGI server to the proxy.

Through Litestar, a forwarded request crossed its exception, CORS, routing, metrics and Host
layers before reaching the proxy, which is a raw ASGI handler anyway; together they cost more
CPU than the proxy itself. This lane does for the requests it takes what those layers did:

- it takes only what the route table would hand the proxy (``/api/v1/...`` except the public
  API document, and ``/webhooks/stripe``) and only requests those layers would pass through
  unchanged: not ``OPTIONS``, no ``Origin`` header (CORS adds nothing without one), a ``Host``
  header on HTTP/1.1; everything else goes through Litestar as before;
- it records the same Prometheus series, under the same route templates (Litestar labels
  everything under a mount with ``path=""``; so does this lane);
- an error before the answer started is answered by the same problem+json handlers;
- it sits in front of the request id middleware and does its work for the requests it takes
  (the caller's acceptable ``X-Request-ID`` or a new one, in the context and on the answer,
  and the same access log line), in the same send wrapper as the metrics: one layer per
  request instead of two.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, cast

from litestar.enums import ScopeType

from shared import (
    REQUEST_ID_HEADER,
    RequestMetrics,
    accept_request_id,
    log_exchange,
    request_id_var,
    send_problem,
    with_request_id,
)

if TYPE_CHECKING:
    from litestar.types import ASGIApp, HTTPScope, Message, Receive, Scope, Send

    from gateway.proxy import Proxy

__all__ = ["ProxyLane"]

# What Litestar's router puts in scope["path_template"] for a request under a mount.
MOUNT_TEMPLATE = ""
_REQUEST_ID = REQUEST_ID_HEADER.lower().encode()


class ProxyLane:
    """Wraps the app's handler (request id middleware included); answers proxied requests with
    ``proxy`` directly."""

    def __init__(
        self,
        app: ASGIApp,
        proxy: Proxy,
        metrics: RequestMetrics,
        *,
        mount: str,
        exact: str,
        excluded: str,
    ) -> None:
        self.app = app
        self.proxy = proxy
        self.metrics = metrics
        self.mount = mount
        self.prefix = mount + "/"
        self.exact = exact
        self.excluded = (excluded, excluded + "/")

    def _take(self, scope: Scope) -> tuple[str, str | None] | None:
        """The route template Litestar would have matched and the caller's request id, or None
        to leave the request to Litestar."""
        if scope["type"] != ScopeType.HTTP or scope["method"] == "OPTIONS":
            return None
        path = scope["path"]
        if path == self.exact:
            template = self.exact
        elif path.startswith(self.prefix) and path not in self.excluded:
            template = MOUNT_TEMPLATE
        else:
            return None
        has_host = False
        incoming = None
        for name, value in scope["headers"]:
            if name == b"origin":
                return None
            if name == b"host":
                has_host = True
            elif name == _REQUEST_ID and incoming is None:
                incoming = value.decode("latin-1")
        if not has_host and scope.get("http_version") == "1.1":
            return None
        return template, incoming

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        taken = self._take(scope)
        if taken is None:
            await self.app(scope, receive, send)
            return
        template, incoming = taken
        request_id = accept_request_id(incoming)
        token = request_id_var.set(request_id)
        method = cast("HTTPScope", scope)["method"]
        scope["path_template"] = template
        started = time.perf_counter()
        # status (500 until an answer starts, for the access log), seconds until the last body,
        # answer started
        span: list[float] = [500, 0.0, 0]

        async def send_observed(message: Message) -> None:
            if message["type"] == "http.response.start":
                span[0] = message["status"]
                span[2] = 1
                with_request_id(message, request_id.encode())
            elif message["type"] == "http.response.body":
                span[1] = time.perf_counter() - started
            await send(message)

        gauge = self.metrics.started(method, template)
        try:
            try:
                await self.proxy(scope, receive, send_observed)
            except Exception as exc:
                if span[2]:
                    raise
                await send_problem(scope, receive, send_observed, exc)
        finally:
            status = int(span[0])
            # Litestar's metrics count an exchange that never answered as a 200.
            self.metrics.finished(gauge, method, template, status if span[2] else 200, span[1])
            log_exchange(scope, status, started)
            request_id_var.reset(token)
