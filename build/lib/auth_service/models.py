"""The auth database: users, revoked token ids and recent login attempts."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import BigInteger, DateTime, Index, Integer, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared import named_metadata

__all__ = ["Base", "LoginAttempt", "RevokedToken", "User"]

# SQLite only auto-increments an INTEGER PRIMARY KEY.
BigId = BigInteger().with_variant(Integer(), "sqlite")


def _now() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = named_metadata()


class User(Base):
    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str] = mapped_column(String(255))
    # One Stripe customer belongs to one user; set once by facturation, never changed.
    user_stripe_id: Mapped[str | None] = mapped_column(String(255), unique=True, default=None)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


class RevokedToken(Base):
    """A logged-out token's ``jti``, kept until the token would have expired anyway."""

    __tablename__ = "revoked_tokens"

    jti: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[int] = mapped_column(BigInteger, index=True)


class LoginAttempt(Base):
    """One login attempt in a rate-limit bucket (``account:<hash>`` or ``address:<ip>``).

    Kept in the database, not in memory, so every replica sees the same counts.
    """

    __tablename__ = "login_attempts"
    __table_args__ = (Index("ix_login_attempts_bucket_at", "bucket", "attempted_at_ms"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    bucket: Mapped[str] = mapped_column(String(80))
    attempted_at_ms: Mapped[int] = mapped_column(BigInteger, index=True)
