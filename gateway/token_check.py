"""Who is calling: every token route asks auth's ``GET /internal/v1/tokens/check`` before anything
is forwarded, and remembers a positive answer for a bounded time.

The decision cache is keyed by a SHA-256 of the token (the token itself is never stored or
logged), holds at most ``max_entries`` decisions, and keeps each one for ``ttl`` seconds but never
past the token's ``exp``: a revoked token keeps working at most ``ttl`` seconds. Refusals are not
cached; they are rare for honest clients and auth answers them without a database write.
Auth unreachable, slow or answering anything but 200/401 fails closed (503).
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from typing import TYPE_CHECKING, Annotated

import msgspec

from gateway.headers import Identity
from shared import UpstreamError

if TYPE_CHECKING:
    from gateway.proxy import Upstream
from shared import (
    BoundedCache,
    ServiceUnavailableError,
    UnauthorizedError,
    bearer_token,
    get_logger,
    invalid_token,
)

__all__ = ["TOKEN_CHECK_PATH", "DecisionCache", "TokenChecker"]

TOKEN_CHECK_PATH = "/internal/v1/tokens/check"  # noqa: S105 - a path
logger = get_logger("gateway.token_check")

HeaderSafe = Annotated[str, msgspec.Meta(min_length=1, pattern=r"^[^\x00-\x1f\x7f]+$")]


class TokenCheck(msgspec.Struct, frozen=True):
    """Auth's answer for a valid token (unknown fields ignored)."""

    user_id: HeaderSafe
    email: HeaderSafe
    exp: int
    jti: str


_decode_check = msgspec.json.Decoder(TokenCheck).decode
_SCHEME = b"bearer "
_SCHEME_LENGTH = len(_SCHEME)


class DecisionCache:
    """Positive token decisions by token hash, bounded in size and in age."""

    __slots__ = ("_entries", "ttl")

    def __init__(self, ttl: float, max_entries: int) -> None:
        self.ttl = ttl
        # Oldest first: insertion order is a good enough proxy for expiry order.
        self._entries: BoundedCache[bytes, tuple[float, Identity]] = BoundedCache(max_entries)

    @property
    def max_entries(self) -> int:
        return self._entries.max_entries

    @property
    def enabled(self) -> bool:
        return self.ttl > 0

    def __len__(self) -> int:
        return len(self._entries)

    @staticmethod
    def key(token: bytes) -> bytes:
        return hashlib.sha256(token).digest()

    def get(self, key: bytes) -> Identity | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[0] <= time.monotonic():
            self._entries.discard(key)
            return None
        return entry[1]

    def put(self, key: bytes, identity: Identity, exp: int) -> None:
        lifetime = min(self.ttl, exp - time.time())
        if lifetime <= 0:
            return
        self._entries.put(key, (time.monotonic() + lifetime, identity))

    def discard(self, key: bytes) -> None:
        self._entries.discard(key)


class TokenChecker:
    """Asks auth about a token, through a connection pool to auth that only token checks use
    (the app factory builds it apart from the forwarding pool, so forwarded traffic cannot
    starve it)."""

    def __init__(
        self,
        auth: Upstream,
        *,
        internal_token: str,
        timeout: float,
        cache: DecisionCache,
    ) -> None:
        self.auth = auth
        self.internal_token = internal_token.encode()
        self.timeout = timeout
        self.cache = cache

    async def identity(self, authorization: bytes | None, request_id: bytes) -> Identity:
        """The verified caller.

        Raises:
            UnauthorizedError: no, malformed, invalid, expired or revoked token.
            ServiceUnavailableError: auth did not give a usable answer in time.
        """
        if not self.cache.enabled:
            return (await self._ask_auth(bearer_token(authorization), request_id))[0]
        identity = self.known(authorization)
        if identity is not None:
            return identity
        token = bearer_token(authorization)
        key = DecisionCache.key(token)
        identity = self.cache.get(key)
        if identity is None:
            identity, exp = await self._ask_auth(token, request_id)
            self.cache.put(key, identity, exp)
        return identity

    def known(self, authorization: bytes | None) -> Identity | None:
        """The caller, when a decision for these very bytes is cached; else None (nothing
        asked). A decision found for them means they already passed the shape check (the same
        token, its scheme spelled in any case): the pattern is run on a miss only."""
        if authorization and authorization[:_SCHEME_LENGTH].lower() == _SCHEME:
            return self.cache.get(DecisionCache.key(authorization[_SCHEME_LENGTH:]))
        return None

    def forget(self, authorization: bytes | None) -> None:
        """Drop a token's decision after its logout went through this gateway."""
        if self.cache.enabled:
            with contextlib.suppress(UnauthorizedError):
                self.cache.discard(DecisionCache.key(bearer_token(authorization)))

    async def _ask_auth(self, token: bytes, request_id: bytes) -> tuple[Identity, int]:
        headers = (
            (b"authorization", b"Bearer " + token),
            (b"x-internal-token", self.internal_token),
            (b"x-request-id", request_id),
        )
        try:
            response = await self.auth.request(
                "GET", TOKEN_CHECK_PATH, headers, read_timeout=self.timeout
            )
            body = await response.read()
        except UpstreamError as exc:
            logger.warning("token check failed", extra={"error": type(exc).__name__})
            raise ServiceUnavailableError(
                "The authentication service is unavailable; retry later."
            ) from None
        if response.status == 401:
            raise invalid_token("The access token is invalid, expired or revoked.")
        if response.status != 200:
            logger.warning("token check refused", extra={"auth_status": response.status})
            raise ServiceUnavailableError("The authentication service could not check the token.")
        try:
            check = _decode_check(body)
        except msgspec.DecodeError:  # also raised for a valid JSON of the wrong shape
            logger.warning("token check answer malformed")
            raise ServiceUnavailableError(
                "The authentication service gave an unusable answer."
            ) from None
        return Identity(check.user_id, check.email), check.exp
