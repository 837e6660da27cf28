"""The auth service's settings, read once from the environment."""

from __future__ import annotations

from typing import Annotated

import msgspec

from shared import NonNegative, Positive
from shared import database_url as read_database_url

__all__ = ["DEFAULT_DATABASE_URL", "AuthSettings", "database_url"]

# Relative to the working directory, like the rest of the dev stack's state in .dev/.
DEFAULT_DATABASE_URL = "sqlite:///.dev/auth.db"


class AuthSettings(msgspec.Struct, frozen=True, kw_only=True):
    """Environment: ``AUTH_DATABASE_URL``, ``INTERNAL_TOKEN``, ``JWT_*``, ``LOGIN_*``,
    ``REGISTER_*``, ``ARGON2_*``.

    A limit of 0 turns that login or registration rate limit off.
    """

    internal_token: str
    jwt_private_key: str
    auth_database_url: str = DEFAULT_DATABASE_URL
    jwt_issuer: str = "facturation-auth"
    jwt_audience: str = "facturation-api"
    jwt_ttl_seconds: Positive = 900
    jwt_previous_public_keys: tuple[str, ...] = ()
    login_max_failures_per_account: NonNegative = 5
    login_max_attempts_per_address: NonNegative = 20
    login_rate_window_seconds: Positive = 60
    register_max_attempts_per_address: NonNegative = 20
    register_rate_window_seconds: Positive = 3600
    # argon2id cost (RFC 9106 low-memory profile by default); stored hashes follow a change
    # at their next successful login.
    argon2_time_cost: Annotated[int, msgspec.Meta(ge=1, le=100)] = 3
    argon2_memory_kib: Annotated[int, msgspec.Meta(ge=1024, le=4_194_304)] = 65536
    argon2_parallelism: Annotated[int, msgspec.Meta(ge=1, le=255)] = 4
    # Hashes at once, each in a low-priority thread; past it 503 at once. Memory: this many
    # times argon2_memory_kib.
    argon2_max_concurrent: Annotated[int, msgspec.Meta(ge=1, le=256)] = 4


def database_url() -> str:
    """What ``migrate`` needs, so migrations run without the service's secrets."""
    return read_database_url("AUTH_DATABASE_URL", DEFAULT_DATABASE_URL)
