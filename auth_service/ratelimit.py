"""Rate limits in sliding windows: login failures per account, login attempts per client address,
and registrations per client address (each one costs an argon2id hash and a row).

The counts live in the ``login_attempts`` table (buckets ``account:``, ``address:`` and
``register:``), so every replica of the service enforces the same limit. An attempt is recorded
*before* it is counted: concurrent attempts all see each other, so a burst can only be refused too
eagerly, never let through beyond the limit.

A refused registration is also remembered in the process, until the ``Retry-After`` it was given:
the next attempts from that address are refused from memory, before any database round trip or
hashing check, with the ``Retry-After`` that is left. The database stays the authority (an address
the memory does not hold, or no longer holds, is counted there), and the memory only repeats a
refusal the database made: the attempts it refuses are counted nowhere, like refused ones.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable

from sqlalchemy import delete, func, insert, or_, select
from sqlalchemy.ext.asyncio import AsyncEngine

from auth_service.models import LoginAttempt
from shared import RememberedRefusals, TooManyRequestsError

__all__ = [
    "REMEMBERED_REFUSALS",
    "LoginRateLimiter",
    "account_bucket",
    "address_bucket",
    "registration_bucket",
]


def account_bucket(email: str) -> str:
    # Hashed: the table need not hold addresses typed by strangers, and the key has a fixed size.
    return "account:" + hashlib.sha256(email.encode()).hexdigest()[:40]


def address_bucket(address: str) -> str:
    return "address:" + address[:64]


_REGISTRATION = "register:"
_REGISTRATION_REFUSED = "Too many registrations from this address; retry later."
# Addresses whose refusal is remembered; past it the oldest is forgotten (and counted in the
# database again). About 100 bytes each.
REMEMBERED_REFUSALS = 10_000


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
        # Registration buckets the database refused, until its Retry-After passes.
        self.remembered_refusals = RememberedRefusals(REMEMBERED_REFUSALS, clock=clock)

    async def record_address_attempt(self, address: str) -> None:
        """Count this attempt against the address; 429 if it is one too many."""
        await self._take_or_refuse(
            address_bucket(address), self.max_attempts_per_address, self.window_ms
        )

    async def record_account_attempt(self, email: str) -> None:
        """Count this attempt as a failure until :meth:`clear_account` says it succeeded."""
        await self._take_or_refuse(
            account_bucket(email), self.max_failures_per_account, self.window_ms
        )

    def refuse_known_registration(self, address: str) -> None:
        """429 at once, from memory, for an address this process saw refused and whose
        ``Retry-After`` has not passed; no database work."""
        left = self.remembered_refusals.remaining(registration_bucket(address))
        if left is not None:
            raise _too_many(_REGISTRATION_REFUSED, math.ceil(left * 1000))

    async def record_registration(self, address: str) -> None:
        """Count a registration attempt against the address, before any hashing; 429 past the
        limit. Every attempt counts, refused ones (409, 422) too: each can cost a hash."""
        bucket = registration_bucket(address)
        until = await self._take(
            bucket, self.max_registrations_per_address, self.registration_window_ms
        )
        if until is not None:
            remaining_ms = until - self._now_ms()
            self.remembered_refusals.remember(bucket, remaining_ms / 1000)
            raise _too_many(_REGISTRATION_REFUSED, remaining_ms)

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

    async def _take_or_refuse(self, bucket: str, limit: int, window_ms: int) -> None:
        until = await self._take(bucket, limit, window_ms)
        if until is not None:
            raise _too_many("Too many login attempts; retry later.", until - self._now_ms())

    async def _take(self, bucket: str, limit: int, window_ms: int) -> int | None:
        """Record an attempt; when it is one too many, forget it again and return until when
        (epoch ms) the bucket stays full: the oldest attempt's end of window."""
        if limit == 0:
            return None
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
            return None
        # A refused attempt is not counted: hammering must not extend someone's lockout forever.
        async with self._engine.begin() as connection:
            await connection.execute(delete(LoginAttempt).where(LoginAttempt.id == attempt_id))
        return int(oldest) + window_ms

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)


def _too_many(detail: str, remaining_ms: int) -> TooManyRequestsError:
    retry_after = max(1, math.ceil(remaining_ms / 1000))
    return TooManyRequestsError(
        detail, headers={"Retry-After": str(retry_after)}, extra={"retry_after": retry_after}
    )
