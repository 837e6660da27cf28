from __future__ import annotations

import time

from sqlalchemy import insert, select

from auth_service.app import _purge_expired
from auth_service.models import LoginAttempt, RevokedToken
from auth_service.ratelimit import LoginRateLimiter
from shared import Database


async def test_housekeeping_drops_expired_revocations_and_old_attempts(
    auth_database_url: str,
) -> None:
    now = time.time()
    database = Database(auth_database_url)
    limiter = LoginRateLimiter(
        database.engine, max_failures_per_account=5, max_attempts_per_address=20, window_seconds=60
    )
    try:
        async with database.engine.begin() as connection:
            await connection.execute(
                insert(RevokedToken),
                [
                    {"jti": "expired", "expires_at": int(now) - 1},
                    {"jti": "live", "expires_at": int(now) + 600},
                ],
            )
            await connection.execute(
                insert(LoginAttempt),
                [
                    {"bucket": "address:old", "attempted_at_ms": int((now - 120) * 1000)},
                    {"bucket": "address:new", "attempted_at_ms": int(now * 1000)},
                ],
            )
        await _purge_expired(database, limiter)
        async with database.engine.connect() as connection:
            revoked = set((await connection.scalars(select(RevokedToken.jti))).all())
            buckets = set((await connection.scalars(select(LoginAttempt.bucket))).all())
    finally:
        await database.dispose()
    assert revoked == {"live"}
    assert buckets == {"address:new"}
