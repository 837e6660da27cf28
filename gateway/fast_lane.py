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

from typing import TYPE_CHECKING

from litestar.enums import ScopeType

from shared import REQUEST_ID_HEADER, Lane, RequestMetrics

if TYPE_CHECKING:
    from litestar.types import ASGIApp, Receive, Scope, Send

    from gateway.proxy import Proxy
    from shared._lane_protocol import LaneExchange

__all__ = ["ProxyLane"]

# What Litestar's router puts in scope["path_template"] for a request under a mount.
MOUNT_TEMPLATE = ""
_REQUEST_ID = REQUEST_ID_HEADER.lower().encode()


class ProxyLane(Lane):
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

    def take(self, scope: Scope) -> tuple[str, str | None] | None:
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

    def answer_at_once(self, exchange: LaneExchange) -> bool:
        """A ``GET`` that needs no wait is forwarded from callbacks (``gateway/at_once.py``)."""
        return self.proxy.forward_at_once(self, exchange)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Proxy one request taken by :meth:`take`."""
        await self.proxy(scope, receive, send)
