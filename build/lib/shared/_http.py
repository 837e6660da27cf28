"""Pooled httpx clients for calls between our services: each call repeats the request id and
carries the internal credential."""

from __future__ import annotations

import httpx

from shared._internal import INTERNAL_TOKEN_HEADER
from shared._request_id import REQUEST_ID_HEADER, current_request_id

__all__ = ["internal_client"]


def internal_client(
    base_url: str,
    internal_token: str,
    *,
    timeout: float = 5.0,
    connect_timeout: float = 2.0,
    max_connections: int = 100,
) -> httpx.AsyncClient:
    async def add_context(request: httpx.Request) -> None:
        request_id = current_request_id()
        if request_id:
            request.headers[REQUEST_ID_HEADER] = request_id
        request.headers[INTERNAL_TOKEN_HEADER] = internal_token

    return httpx.AsyncClient(
        base_url=base_url,
        timeout=httpx.Timeout(timeout, connect=connect_timeout),
        limits=httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections
        ),
        event_hooks={"request": [add_context]},
    )
