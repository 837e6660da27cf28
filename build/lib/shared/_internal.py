"""The internal credential: the gateway sends it, the private services require it.

Identity headers (``X-User-Id``, ``X-User-Email``) are only believed on a request that carries a
valid credential, so a client can never choose who it is.
"""

from __future__ import annotations

import hmac
from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from shared._exceptions import UnauthorizedError

__all__ = [
    "INTERNAL_TOKEN_HEADER",
    "PUBLIC_ROUTE",
    "USER_EMAIL_HEADER",
    "USER_ID_HEADER",
    "internal_token_matches",
    "require_internal_token",
]

INTERNAL_TOKEN_HEADER = "X-Internal-Token"  # noqa: S105 - a header name
USER_ID_HEADER = "X-User-Id"
USER_EMAIL_HEADER = "X-User-Email"
PUBLIC_ROUTE = "public"
"""Route ``opt`` key: health and metrics answer without the credential."""


def internal_token_matches(presented: str | None, expected: str) -> bool:
    if not presented or not expected:
        return False
    return hmac.compare_digest(presented.encode(), expected.encode())


async def require_internal_token(
    connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
) -> None:
    """App-level guard of a private service."""
    if handler.opt.get(PUBLIC_ROUTE):
        return
    expected: str = connection.app.state.internal_token
    if not internal_token_matches(connection.headers.get(INTERNAL_TOKEN_HEADER), expected):
        raise UnauthorizedError("This private route requires the internal credential.")
