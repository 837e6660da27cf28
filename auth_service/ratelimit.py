"""Rate limits in sliding windows: login failures per account, login attempts per client address,
and registrations per client address (each one costs an argon2id hash and a row).

The counts live in the ``login_attempts`` table (buckets ``account:``, ``address:`` and
``register:``), so every replica of the service enforces the same limit. An attempt is recorded
*before* it is counted: concurrent attempts all see each other, so a burst can only be refused too
eagerly, never let through beyond the limit.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable

from sqlalchemy import delete, func, insert, or_, select
from sqlalchemy.ext.asyncio import AsyncEngine

from auth_service.models import LoginAttempt
from shared import TooManyRequestsError

__all__ = ["LoginRateLimiter", "account_bucket", "address_bucket", "registration_bucket"]


def account_bucket(email: str) -> str:
    # Hashed: the table need not hold addresses typed by strangers, and the key has a fixed size.
    return "account:" + hashlib.sha256(email.encode()).hexdigest()[:40]


def address_bucket(address: str) -> str:
    return "address:" + address[:64]


_REGISTRATION = "register:"


def registration_bucket(address: str) -> str:
    return _REGISTRATION + address[:64]


class LoginRateLimiter:
    def __init__(
        self,
        engine: AsyncEngine,
        *,
        max_failures_per_account: int,
        max_attempts_per_address: int,
        window_seconds: int,
        max_registrations_per_address: int = 0,
        registration_window_seconds: int = 3600,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._engine = engine
        self.max_failures_per_account = max_failures_per_account
        self.max_attempts_per_address = max_attempts_per_address
        self.window_ms = window_seconds * 1000
        self.max_registrations_per_address = max_registrations_per_address
        self.registration_window_ms = registration_window_seconds * 1000
        self._clock = clock

    async def record_address_attempt(self, address: str) -> None:
        """Count this attempt against the address; 429 if it is one too many."""
        await self._take(address_bucket(address), self.max_attempts_per_address, self.window_ms)

    async def record_account_attempt(self, email: str) -> None:
        """Count this attempt as a failure until :meth:`clear_account` says it succeeded."""
        await self._take(account_bucket(email), self.max_failures_per_account, self.window_ms)

    async def record_registration(self, address: str) -> None:
        """Count a registration attempt against the address, before any hashing; 429 past the
        limit. Every attempt counts, refused ones (409, 422) too: each can cost a hash."""
        await self._take(
            registration_bucket(address),
            self.max_registrations_per_address,
            self.registration_window_ms,
            "Too many registrations from this address; retry later.",
        )

    async def clear_account(self, email: str) -> None:
        """A successful login forgives the account's earlier failures."""
        if self.max_failures_per_account == 0:
            return
        async with self._engine.begin() as connection:
            await connection.execute(
                delete(LoginAttempt).where(LoginAttempt.bucket == account_bucket(email))
            )

    async def purge(self) -> int:
        """Forget attempts older than the window; returns how many rows went."""
        now = self._now_ms()
        registration = LoginAttempt.bucket.startswith(_REGISTRATION)
        async with self._engine.begin() as connection:
            result = await connection.execute(
                delete(LoginAttempt).where(
                    or_(
                        ~registration & (LoginAttempt.attempted_at_ms <= now - self.window_ms),
                        registration
                        & (LoginAttempt.attempted_at_ms <= now - self.registration_window_ms),
                    )
                )
            )
        return int(result.rowcount)

    async def _take(
        self,
        bucket: str,
        limit: int,
        window_ms: int,
        detail: str = "Too many login attempts; retry later.",
    ) -> None:
        if limit == 0:
            return
        now = self._now_ms()
        async with self._engine.begin() as connection:
            attempt_id = await connection.scalar(
                insert(LoginAttempt)
                .values(bucket=bucket, attempted_at_ms=now)
                .returning(LoginAttempt.id)
            )
        async with self._engine.connect() as connection:
            count, oldest = (
                await connection.execute(
                    select(func.count(), func.min(LoginAttempt.attempted_at_ms)).where(
                        LoginAttempt.bucket == bucket,
                        LoginAttempt.attempted_at_ms > now - window_ms,
                    )
                )
            ).one()
        if count <= limit:
            return
        # A refused attempt is not counted: hammering must not extend someone's lockout forever.
        async with self._engine.begin() as connection:
            await connection.execute(delete(LoginAttempt).where(LoginAttempt.id == attempt_id))
        retry_after = max(1, math.ceil((oldest + window_ms - now) / 1000))
        raise TooManyRequestsError(
            detail,
            headers={"Retry-After": str(retry_after)},
            extra={"retry_after": retry_after},
        )

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)
