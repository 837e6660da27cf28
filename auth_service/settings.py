"""The auth service's settings, read once from the environment."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import msgspec
from sqlalchemy.engine import make_url

from shared import is_sqlite, load_settings

__all__ = ["DEFAULT_DATABASE_URL", "AuthSettings", "DatabaseSettings", "database_url"]

# Relative to the working directory, like the rest of the dev stack's state in .dev/.
DEFAULT_DATABASE_URL = "sqlite:///.dev/auth.db"

Positive = Annotated[int, msgspec.Meta(ge=1)]
NonNegative = Annotated[int, msgspec.Meta(ge=0)]


class AuthSettings(
    msgspec.Struct, frozen=True, kw_only=True, rename={"database_url": "auth_database_url"}
):
    """Environment: ``AUTH_DATABASE_URL``, ``INTERNAL_TOKEN``, ``JWT_*``, ``LOGIN_*``,
    ``REGISTER_*``, ``ARGON2_*``.

    A limit of 0 turns that login or registration rate limit off.
    """

    internal_token: str
    jwt_private_key: str
    database_url: str = DEFAULT_DATABASE_URL
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
    argon2_time_cost: Positive = 3
    argon2_memory_kib: Annotated[int, msgspec.Meta(ge=1024)] = 65536
    argon2_parallelism: Positive = 4
    # Hashes at once, each in a low-priority thread; past it 503 at once. Memory: this many
    # times argon2_memory_kib.
    argon2_max_concurrent: Positive = 4


class DatabaseSettings(msgspec.Struct, frozen=True, rename={"url": "auth_database_url"}):
    """What ``migrate`` needs, so migrations run without the service's secrets."""

    url: str = DEFAULT_DATABASE_URL


def ensure_sqlite_directory(url: str) -> None:
    """SQLite creates the file but not its folder; the default lives in ``.dev/``."""
    if not is_sqlite(url):
        return
    path = make_url(url).database
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)


def database_url() -> str:
    url = load_settings(DatabaseSettings, os.environ).url
    ensure_sqlite_directory(url)
    return url
