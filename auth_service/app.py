"""The auth service's app factory: settings are read once, here."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager

from argon2 import PasswordHasher
from litestar import Litestar
from sqlalchemy import delete

from auth_service.api_docs import API_DOCS
from auth_service.models import RevokedToken
from auth_service.passwords import Passwords
from auth_service.ratelimit import LoginRateLimiter
from auth_service.routes import dependencies, route_handlers
from auth_service.settings import AuthSettings
from auth_service.signing_keys import KeyRing
from auth_service.tokens import Tokens
from shared import Database, create_service_app, load_settings

__all__ = ["create_app", "load"]

SERVICE = "auth_service"
HOUSEKEEPING_INTERVAL_SECONDS = 60.0
logger = logging.getLogger(SERVICE)


def load() -> AuthSettings:
    """Read and check the settings, the keys' PEMs included.

    Raises:
        SettingsError: one line naming the missing or malformed variable.
    """
    settings = load_settings(AuthSettings)
    KeyRing.from_pems(settings.jwt_private_key, settings.jwt_previous_public_keys)
    return settings


async def _purge_expired(database: Database, limiter: LoginRateLimiter) -> None:
    async with database.engine.begin() as connection:
        await connection.execute(
            delete(RevokedToken).where(RevokedToken.expires_at < int(time.time()))
        )
    await limiter.purge()


def _housekeeping(
    database: Database, limiter: LoginRateLimiter
) -> Callable[[Litestar], AbstractAsyncContextManager[None]]:
    """Lifespan: drop revocations of expired tokens and login attempts out of the window."""

    @contextlib.asynccontextmanager
    async def lifespan(_app: Litestar) -> AsyncIterator[None]:
        async def loop() -> None:
            while True:
                await asyncio.sleep(HOUSEKEEPING_INTERVAL_SECONDS)
                try:
                    await _purge_expired(database, limiter)
                except Exception:  # the next round retries; serving must not stop for this
                    logger.warning("housekeeping failed", exc_info=True)

        task = asyncio.create_task(loop())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    return lifespan


def create_app(settings: AuthSettings | None = None) -> Litestar:
    settings = settings or load()
    database = Database(settings.auth_database_url)
    keys = KeyRing.from_pems(settings.jwt_private_key, settings.jwt_previous_public_keys)
    tokens = Tokens(
        keys,
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        ttl_seconds=settings.jwt_ttl_seconds,
        database=database,
    )
    limiter = LoginRateLimiter(
        database.engine,
        max_failures_per_account=settings.login_max_failures_per_account,
        max_attempts_per_address=settings.login_max_attempts_per_address,
        window_seconds=settings.login_rate_window_seconds,
        max_registrations_per_address=settings.register_max_attempts_per_address,
        registration_window_seconds=settings.register_rate_window_seconds,
    )
    passwords = Passwords(
        PasswordHasher(
            time_cost=settings.argon2_time_cost,
            memory_cost=settings.argon2_memory_kib,
            parallelism=settings.argon2_parallelism,
        ),
        max_concurrent=settings.argon2_max_concurrent,
    )

    @contextlib.asynccontextmanager
    async def hashing_threads(_app: Litestar) -> AsyncIterator[None]:
        try:
            yield
        finally:
            passwords.close()

    return create_service_app(
        service=SERVICE,
        route_handlers=route_handlers,
        internal_token=settings.internal_token,
        database=database,
        state={"passwords": passwords, "tokens": tokens, "login_rate_limiter": limiter},
        dependencies=dependencies,
        lifespan=[_housekeeping(database, limiter), hashing_threads],
        api_docs=API_DOCS,
    )
