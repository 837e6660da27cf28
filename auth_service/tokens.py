"""Access tokens: issue (EdDSA JWT), verify, revoke.

Verification is on the hot path (every uncached gateway request, nginx ``auth_request``): it is
one signature check and, for revocation, one primary-key lookup; no password work.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

import jwt
from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError

from auth_service.models import RevokedToken
from auth_service.signing_keys import ALGORITHM, KeyRing
from shared import DATABASE_ERRORS, Database, ServiceUnavailableError, invalid_token

__all__ = ["AccessToken", "TokenClaims", "Tokens"]

REQUIRED_CLAIMS = ["sub", "email", "iss", "aud", "iat", "exp", "jti"]
_REVOKED = RevokedToken.metadata.tables[RevokedToken.__tablename__]


@dataclass(frozen=True)
class AccessToken:
    token: str
    jti: str
    expires_in: int


@dataclass(frozen=True)
class TokenClaims:
    user_id: str
    email: str
    exp: int
    jti: str


class Tokens:
    def __init__(
        self,
        keys: KeyRing,
        *,
        issuer: str,
        audience: str,
        ttl_seconds: int,
        database: Database,
    ) -> None:
        self.keys = keys
        self.issuer = issuer
        self.audience = audience
        self.ttl_seconds = ttl_seconds
        self._database = database

    def issue(self, *, user_id: str, email: str) -> AccessToken:
        now = int(time.time())
        jti = uuid.uuid4().hex
        claims = {
            "sub": user_id,
            "email": email,
            "iss": self.issuer,
            "aud": self.audience,
            "iat": now,
            "exp": now + self.ttl_seconds,
            "jti": jti,
        }
        token = jwt.encode(
            claims,
            self.keys.signing_key,
            algorithm=ALGORITHM,
            headers={"kid": self.keys.signing_kid},
        )
        return AccessToken(token=token, jti=jti, expires_in=self.ttl_seconds)

    def decode(self, token: str) -> TokenClaims:
        """Signature, algorithm, issuer, audience, expiry and claim presence; not revocation."""
        try:
            header = jwt.get_unverified_header(token)
            key = self.keys.verification_keys.get(str(header.get("kid")))
            if key is None:
                raise invalid_token("The token was not signed by a key this service accepts.")
            claims: dict[str, Any] = jwt.decode(
                token,
                key.key,
                algorithms=[ALGORITHM],
                audience=self.audience,
                issuer=self.issuer,
                options={"require": REQUIRED_CLAIMS},
            )
        except jwt.ExpiredSignatureError:
            raise invalid_token("The token has expired.") from None
        except jwt.PyJWTError:
            raise invalid_token("The token is invalid.") from None
        user_id, email, jti = claims["sub"], claims["email"], claims["jti"]
        if not all(isinstance(value, str) and value for value in (user_id, email, jti)):
            raise invalid_token("The token is invalid.")
        if len(jti) > 64:
            raise invalid_token("The token is invalid.")
        return TokenClaims(user_id=user_id, email=email, exp=int(claims["exp"]), jti=jti)

    async def verify(self, token: str) -> TokenClaims:
        """:meth:`decode`, then refuse a revoked token."""
        claims = self.decode(token)
        if await self._is_revoked(claims.jti):
            raise invalid_token("The token has been revoked.")
        return claims

    async def _is_revoked(self, jti: str) -> bool:
        """One primary-key lookup in one round trip (``Database.row_exists``: no ping, no
        transaction; a connection a database restart dropped is retried once). An unreachable
        list fails the check closed: 503, never 200."""
        try:
            return await self._database.row_exists(_REVOKED, "jti", jti)
        except DATABASE_ERRORS:
            raise ServiceUnavailableError("The revocation list is unreachable.") from None

    async def revoke(self, claims: TokenClaims) -> None:
        """Idempotent: revoking twice keeps one row, kept until the token's own expiry."""
        try:
            async with self._database.engine.begin() as connection:
                await connection.execute(
                    insert(RevokedToken).values(jti=claims.jti, expires_at=claims.exp)
                )
        except IntegrityError:
            return
