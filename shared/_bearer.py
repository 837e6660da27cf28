"""The one bearer-token parser: the gateway and auth read ``Authorization`` the same way.

The rule is RFC 6750 §2.1 taken strictly, for the tokens this system issues (compact JWS):

    credentials = "Bearer" SP token       ; the scheme is case-insensitive (RFC 9110 §11.1)
    token       = part "." part "." part  ; three non-empty base64url parts

Exactly one space; nothing before the scheme or after the token (the HTTP server has already
trimmed the field's surrounding whitespace); at most 4096 bytes. Anything else, and a request with
two ``Authorization`` headers, is 401 with ``WWW-Authenticate: Bearer error="invalid_token"``
before any signature work or call to auth.
"""

from __future__ import annotations

import re
from typing import AnyStr

from shared._exceptions import UnauthorizedError

__all__ = ["BEARER_CHALLENGE", "bearer_token", "invalid_token"]

BEARER_CHALLENGE = 'Bearer error="invalid_token"'
"""The ``WWW-Authenticate`` value of every 401 about an access token."""
MAX_AUTHORIZATION_LENGTH = 4096
_PATTERN = r"^[Bb][Ee][Aa][Rr][Ee][Rr] ([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)\Z"
_BEARER = re.compile(_PATTERN)
_BEARER_BYTES = re.compile(_PATTERN.encode())


def invalid_token(detail: str) -> UnauthorizedError:
    """A 401 carrying the bearer challenge."""
    return UnauthorizedError(detail, headers={"WWW-Authenticate": BEARER_CHALLENGE})


def bearer_token(authorization: AnyStr | None) -> AnyStr:
    """The token of an ``Authorization: Bearer <jwt>`` header value (``None``: no header), as
    ``str`` or ``bytes`` like the value given.

    Raises:
        UnauthorizedError: absent, another scheme, or not ``Bearer <jwt>`` exactly.
    """
    if not authorization:
        raise invalid_token("This route requires an access token (Authorization: Bearer).")
    if len(authorization) <= MAX_AUTHORIZATION_LENGTH:
        pattern = _BEARER_BYTES if isinstance(authorization, bytes) else _BEARER
        match = pattern.match(authorization)
        if match is not None:
            token: AnyStr = match.group(1)
            return token
    raise invalid_token("The Authorization header is not 'Bearer <token>'.")
