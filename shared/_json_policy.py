"""The JSON policy every service applies before any decoder sees a request body.

A body larger than the service accepts is a 413; JSON nested deeper than ``MAX_JSON_DEPTH`` is a
400. Both are problem+json, raised before the handler runs, so a hostile body can neither make a
decoder recurse past Python's stack limit (a ``RecursionError`` would be a 500) nor cost more
than one bounded buffer.

The depth check is a byte scan, not a second parse: escapes are dropped and strings cut out by
splitting on quotes (a bracket inside a string does not nest), the remaining brackets are mapped
to +1/-1 and their running sum is taken, all in C. A body with fewer brackets than the limit is
accepted without a scan at all, which is every ordinary request.
"""

from __future__ import annotations

from itertools import accumulate
from typing import TYPE_CHECKING

from litestar.enums import ScopeType

from shared._exceptions import BadRequestError, ContentTooLargeError

if TYPE_CHECKING:
    from litestar.types import ASGIApp, HTTPRequestEvent, Receive, ReceiveMessage, Scope, Send

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "MAX_JSON_DEPTH",
    "JsonPolicyMiddleware",
    "check_json_depth",
    "json_depth",
]

MAX_JSON_DEPTH = 64
"""Deeper than any body this project accepts (Stripe's events nest about 8 levels)."""
DEFAULT_MAX_BODY_BYTES = 1_048_576

# Opening brackets become +1 and closing ones -1, once the bytes are read as signed chars.
_TO_STEPS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")
_NOT_BRACKETS = bytes(c for c in range(256) if c not in b"[]{}")
_NOT_OPENERS = bytes(c for c in range(256) if c not in b"[{")
_FORM_TYPES = (b"application/x-www-form-urlencoded", b"multipart/form-data")


def json_depth(body: bytes) -> int:
    """How deeply the JSON text nests (``0`` for a scalar); brackets in strings do not count."""
    if b"[" not in body and b"{" not in body:
        return 0
    # Escaped backslashes first, so that in ``\\"`` the quote still closes its string.
    unescaped = body.replace(b"\\\\", b"").replace(b'\\"', b"")
    outside_strings = b"".join(unescaped.split(b'"')[::2])
    steps = outside_strings.translate(_TO_STEPS, _NOT_BRACKETS)
    return max(0, max(accumulate(memoryview(steps).cast("b")), default=0))


def check_json_depth(body: bytes, max_depth: int = MAX_JSON_DEPTH) -> None:
    """Raises:
    BadRequestError: the body nests deeper than ``max_depth``.
    """
    # One pass keeping only the openers: half the time of two ``count`` calls (a Stripe event:
    # 2.4 against 4.1 µs), and every JSON body the services receive pays it.
    if len(body.translate(None, _NOT_OPENERS)) <= max_depth:
        return
    depth = json_depth(body)
    if depth > max_depth:
        raise BadRequestError(
            f"The JSON body nests {depth} levels deep; at most {max_depth} are accepted."
        )


class JsonPolicyMiddleware:
    """Reads the request body once, bounded, checks it, then hands the same bytes on.

    Form bodies (the Stripe stand-in's wire format) pass unchecked; any other body is treated as
    JSON whatever its ``Content-Type`` says, since the decoders do not look at it either.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_depth: int = MAX_JSON_DEPTH,
        max_bytes: int = DEFAULT_MAX_BODY_BYTES,
    ) -> None:
        self.app = app
        self.max_depth = max_depth
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP or not self._has_json_body(scope):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client left: nobody to answer
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                raise ContentTooLargeError("The request body is larger than this server accepts.")
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        check_json_depth(body, self.max_depth)
        await self.app(scope, _replay(body, receive), send)

    def _has_json_body(self, scope: Scope) -> bool:
        length: bytes | None = None
        chunked = False
        for name, value in scope["headers"]:
            if name == b"content-length":
                length = value
            elif name == b"transfer-encoding":
                chunked = True
            elif name == b"content-type" and value.lower().startswith(_FORM_TYPES):
                return False
        if length is not None:
            if not length.isdigit():
                return True  # the server refuses it anyway; do not guess
            if int(length) > self.max_bytes:
                raise ContentTooLargeError("The request body is larger than this server accepts.")
            return int(length) > 0
        return chunked


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that yields the buffered body once, then the real one's messages."""
    first: HTTPRequestEvent = {"type": "http.request", "body": body, "more_body": False}
    pending: list[ReceiveMessage] = [first]

    async def replay() -> ReceiveMessage:
        if pending:
            return pending.pop()
        return await receive()

    return replay
