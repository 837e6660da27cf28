"""The internal credential: the gateway sends it, the private services require it.

Identity headers (``X-User-Id``, ``X-User-Email``) are set by the gateway from auth's token check
(it strips any a client sent) and only believed on a request that carries a valid credential, so a
client can never choose who it is. ``provide_identity`` is the one way a private route reads them.
"""

from __future__ import annotations

import hmac
import re
from dataclasses import dataclass
from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from shared._exceptions import UnauthorizedError

__all__ = [
    "INTERNAL_TOKEN_HEADER",
    "PUBLIC_ROUTE",
    "USER_EMAIL_HEADER",
    "USER_ID_HEADER",
    "Identity",
    "internal_token_matches",
    "provide_identity",
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


_USER_ID = re.compile(r"^[A-Za-z0-9-]{1,64}$")


@dataclass(frozen=True, slots=True)
class Identity:
    """Who the gateway says is calling; believed only because the internal-token guard passed."""

    user_id: str
    email: str | None


async def provide_identity(request: ASGIConnection[Any, Any, Any, Any]) -> Identity:
    """The verified caller of a user route (``Provide(provide_identity)``).

    Raises:
        UnauthorizedError: no ``X-User-Id``, or one that is not an id (letters, digits, ``-``).
    """
    user_id = request.headers.get(USER_ID_HEADER, "")
    if not _USER_ID.fullmatch(user_id):
        raise UnauthorizedError(f"This route needs a signed-in user ({USER_ID_HEADER}).")
    return Identity(user_id=user_id, email=request.headers.get(USER_EMAIL_HEADER))
