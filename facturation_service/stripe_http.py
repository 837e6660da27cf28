"""What carries the Stripe SDK's requests: the project's lean HTTP/1.1 pool
(``shared.ConnectionPool``), one per origin, TLS from the SDK's own CA bundle.

stripe-python's ``HTTPXClient`` cost about 1 ms of CPU per request on the checkout path (httpx's
request and response models, httpcore's pool, h11, anyio's cancel scopes, the head and the body
written as two sends): most of facturation's CPU per Checkout Session (docs/benchmarks.md).
Stripe's requests are small and whole (a form body out, a JSON body back), so each goes in one
write and each answer is read into memory. The SDK keeps everything above the wire: form
encoding, headers, idempotency keys, retries (it retries every :class:`stripe.APIConnectionError`
raised here, with the same idempotency key), errors.

It speaks to Stripe directly: with ``HTTPS_PROXY``, ``HTTP_PROXY`` or ``ALL_PROXY`` set,
:func:`stripe_http_client` keeps ``stripe.HTTPXClient``, which honours them.

Failures reach the SDK as ``stripe.APIConnectionError`` caused by the pool's error
(``shared.UpstreamError``): ``UpstreamTimeoutError`` when no connection, no free connection or
no answer came in time (``stripe_api`` answers 504 for it, 502 for the others).
"""

from __future__ import annotations

import asyncio
import os
import ssl
import textwrap
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any, NoReturn
from urllib.parse import urlsplit

import httpx
import stripe

from shared import ConnectionPool, UpstreamError, UpstreamProtocolError

__all__ = ["StripeHttpClient", "stripe_http_client"]

_PROXY_VARIABLES = (
    "HTTPS_PROXY",
    "HTTP_PROXY",
    "ALL_PROXY",
    "https_proxy",
    "http_proxy",
    "all_proxy",
)


def stripe_http_client(timeout_seconds: float) -> stripe.HTTPClient:
    """The app's client to Stripe: :class:`StripeHttpClient`, or stripe's httpx one when a proxy
    is configured in the environment (httpx reads it; this client does not)."""
    if any(os.environ.get(name) for name in _PROXY_VARIABLES):
        return stripe.HTTPXClient(
            timeout=httpx.Timeout(timeout_seconds, connect=min(timeout_seconds, 5.0))
        )
    return StripeHttpClient(timeout_seconds=timeout_seconds)


class _Headers(Mapping[str, str]):
    """An answer's headers, looked up case-insensitively (the SDK asks for ``Request-Id`` and
    ``request-id``); a repeated header's values joined by ``, `` as httpx does."""

    __slots__ = ("_values",)

    def __init__(self, pairs: list[tuple[bytes, bytes]]) -> None:
        values: dict[str, str] = {}
        for name, value in pairs:  # (names come lower-cased)
            key, text = name.decode("latin-1"), value.decode("latin-1")
            known = values.get(key)
            values[key] = text if known is None else f"{known}, {text}"
        self._values = values

    def __getitem__(self, name: str) -> str:
        return self._values[name.lower()]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._values

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)


class StripeHttpClient(stripe.HTTPClient):
    """``stripe.HTTPClient`` for the async calls (the service makes no sync ones)."""

    name = "facturation"

    def __init__(
        self,
        *,
        timeout_seconds: float = 10.0,
        connect_timeout_seconds: float | None = None,
        max_connections: int = 100,
        max_idle_connections: int | None = None,
        idle_seconds: float = 4.0,
    ) -> None:
        """Args:
        timeout_seconds: for each wait on the answer once the request is sent (its head, then
            each piece of its body, as httpx's read timeout), and to wait for a free connection
            when ``max_connections`` are busy.
        connect_timeout_seconds: for a new connection (TLS included); at most 5 s by default.
        max_connections: per origin, as httpx's default (100).
        max_idle_connections: kept for reuse per origin; by default as many as
            ``max_connections``. With httpx's 20, each burst of 100 concurrent checkouts closed
            80 connections and the next burst opened 80 again: on loopback a connect, against
            Stripe a TCP and TLS handshake each. An idle connection still closes after
            ``idle_seconds``.
        idle_seconds: an idle connection older than this is closed rather than reused (below
            the 5 s keep-alive of uvicorn, which serves the sandbox).
        """
        super().__init__()
        self.timeout = timeout_seconds
        self.connect_timeout = (
            min(timeout_seconds, 5.0)
            if connect_timeout_seconds is None
            else connect_timeout_seconds
        )
        self.max_connections = max_connections
        self.max_idle = max_connections if max_idle_connections is None else max_idle_connections
        self.idle_seconds = idle_seconds
        self._ssl_context: ssl.SSLContext | None = None
        self._origins: dict[tuple[str, str], ConnectionPool] = {}

    def _origin(self, url: str) -> tuple[ConnectionPool, str]:
        """The origin of ``url`` and its request target (path and query)."""
        parts = urlsplit(url)
        key = (parts.scheme, parts.netloc)
        origin = self._origins.get(key)
        if origin is None:
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise UpstreamProtocolError(f"not an http(s) URL: {url}")
            secure = parts.scheme == "https"
            if secure and self._ssl_context is None:
                # The bundle the SDK itself verifies Stripe's certificate with.
                self._ssl_context = ssl.create_default_context(cafile=stripe.ca_bundle_path)
            origin = ConnectionPool(
                parts.hostname,
                parts.port or (443 if secure else 80),
                max_connections=self.max_connections,
                connect_timeout=self.connect_timeout,
                ssl_context=self._ssl_context if secure else None,
                max_idle=self.max_idle,
                idle_seconds=self.idle_seconds,
                queue_timeout=self.timeout,
                # Every request the SDK sends may go again: its POSTs carry an idempotency key.
                retry_any_method=True,
            )
            self._origins[key] = origin
        target = parts.path or "/"
        if parts.query:
            target = f"{target}?{parts.query}"
        return origin, target

    async def request_async(
        self, method: str, url: str, headers: Mapping[str, str], post_data: Any = None
    ) -> tuple[bytes, int, Mapping[str, str]]:
        try:
            return await self._request(method, url, headers, post_data)
        except UpstreamError as exc:
            self._handle_request_error(exc)

    async def request_stream_async(
        self, method: str, url: str, headers: Mapping[str, str], post_data: Any = None
    ) -> tuple[AsyncIterator[bytes], int, Mapping[str, str]]:
        """The whole answer, handed over as one chunk (the service streams nothing)."""
        content, status, answer_headers = await self.request_async(method, url, headers, post_data)

        async def chunks() -> AsyncIterator[bytes]:
            yield content

        return chunks(), status, answer_headers

    def _handle_request_error(self, exc: UpstreamError) -> NoReturn:
        # The same message and retry decision as stripe's own clients.
        message = (
            textwrap.fill(
                "Unexpected error communicating with Stripe. If this problem persists, let us "
                "know at support@stripe.com."
            )
            + f"\n\n(Network error: A {type(exc).__name__} was raised)"
        )
        raise stripe.APIConnectionError(message, should_retry=True) from exc  # type: ignore[no-untyped-call]

    async def _request(
        self, method: str, url: str, headers: Mapping[str, str], post_data: Any
    ) -> tuple[bytes, int, Mapping[str, str]]:
        origin, target = self._origin(url)
        pairs = []
        for name, value in headers.items():
            if "\r" in value or "\n" in value:
                raise UpstreamProtocolError(f"a line break in the {name} header")
            pairs.append((name.encode("latin-1"), value.encode("latin-1")))
        method = method.upper()
        body = post_data.encode() if isinstance(post_data, str) else bytes(post_data or b"")
        response = await origin.request(
            method,
            target,
            pairs,
            body if body or method not in ("GET", "HEAD", "DELETE") else None,
            read_timeout=self.timeout,
            content_length=False,
        )
        content = response.whole_body()
        if content is None:
            content = await response.read()
        else:
            response.close()
        return content, response.status, _Headers(response.headers)

    async def close_async(self) -> None:
        for origin in self._origins.values():
            origin.close()
        self._origins.clear()

    def sleep_async(self, secs: float) -> Any:
        return asyncio.sleep(secs)
