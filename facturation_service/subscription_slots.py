"""One live subscription per user, decided by the database: the ``subscription_slots`` row.

The slot is taken (``INSERT ... ON CONFLICT DO NOTHING``) before Stripe is called, by a holder
(the new order's id). It then holds the open subscription checkout session, and later the
subscription it became. It is released when the checkout fails (nothing half-made), when the
session expires or its payment fails, and when the subscription ends. Every move is one
conditional statement on the slot's current holder, so of many racers exactly one wins:

    (free) ──take──► held by an order ──bind──► + checkout session ──event──► + subscription
       ▲                 │ Stripe failed          │ expired / abandoned          │ ended
       └─────release─────┴────────────────────────┴──────────────────────────────┘
                          (an abandoned session's slot is taken over, not freed)
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, cast

import msgspec
from sqlalchemy import Table, and_, delete, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from facturation_service.models import SubscriptionSlot, utcnow
from shared import Database

__all__ = [
    "STALE_HOLD_SECONDS",
    "HeldSlot",
    "bind_checkout",
    "hold_subscription",
    "release",
    "release_checkout",
    "release_subscription",
    "take",
    "take_over",
]

STALE_HOLD_SECONDS = 600
"""A holder that never bound a session within this (its process died mid-call) can be replaced;
far longer than a Stripe call with its retries."""

_SLOTS = cast("Table", SubscriptionSlot.__table__)


class HeldSlot(msgspec.Struct, frozen=True):
    """Who holds the slot another request found taken."""

    holder: str
    checkout_session_id: str | None
    checkout_expires_at: int | None
    subscription_id: str | None
    stale: bool
    """No session was ever bound and the holder is older than ``STALE_HOLD_SECONDS``."""

    def abandoned_checkout(self, now: int) -> str | None:
        """The session id when the slot only holds a checkout past its ``expires_at``."""
        if self.subscription_id is not None or self.checkout_session_id is None:
            return None
        if self.checkout_expires_at is None or self.checkout_expires_at > now:
            return None
        return self.checkout_session_id


def _insert(dialect_name: str) -> Any:
    dialect = postgresql if dialect_name == "postgresql" else sqlite
    return dialect.insert(_SLOTS)


async def take(database: Database, user_id: str, holder: str) -> HeldSlot | None:
    """Take the user's slot for ``holder``; ``None`` when taken, else who holds it."""
    for _ in range(3):
        async with database.engine.begin() as connection:
            inserted = await connection.execute(
                _insert(connection.dialect.name)
                .values(user_id=user_id, holder=holder, taken_at=utcnow())
                .on_conflict_do_nothing(index_elements=["user_id"])
                .returning(_SLOTS.c.user_id)
            )
            if inserted.first() is not None:
                return None
        async with database.engine.connect() as connection:
            row = (
                await connection.execute(select(_SLOTS).where(_SLOTS.c.user_id == user_id))
            ).first()
        if row is not None:
            stale_before = utcnow() - timedelta(seconds=STALE_HOLD_SECONDS)
            return HeldSlot(
                holder=row.holder,
                checkout_session_id=row.checkout_session_id,
                checkout_expires_at=row.checkout_expires_at,
                subscription_id=row.subscription_id,
                stale=row.checkout_session_id is None
                and row.subscription_id is None
                and _aware(row.taken_at) < stale_before,
            )
        # Released between our INSERT and our SELECT: try again.
    # Taken and released again and again under us: as good as taken.
    return HeldSlot(
        holder="",
        checkout_session_id=None,
        checkout_expires_at=None,
        subscription_id=None,
        stale=False,
    )


def _aware(value: datetime) -> datetime:
    # SQLite hands back naive datetimes; they were stored in UTC.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


async def take_over(database: Database, user_id: str, old_holder: str, new_holder: str) -> bool:
    """Replace an abandoned holder; ``True`` for the one caller whose UPDATE moved the row."""
    async with database.engine.begin() as connection:
        moved = await connection.execute(
            update(_SLOTS)
            .where(
                _SLOTS.c.user_id == user_id,
                _SLOTS.c.holder == old_holder,
                _SLOTS.c.subscription_id.is_(None),
            )
            .values(
                holder=new_holder,
                checkout_session_id=None,
                checkout_expires_at=None,
                taken_at=utcnow(),
            )
            .returning(_SLOTS.c.user_id)
        )
        return moved.first() is not None


async def bind_checkout(
    connection: AsyncConnection, user_id: str, holder: str, session_id: str, expires_at: int
) -> None:
    """The holder's checkout session exists: the slot now holds it (until it expires)."""
    await connection.execute(
        update(_SLOTS)
        .where(_SLOTS.c.user_id == user_id, _SLOTS.c.holder == holder)
        .values(checkout_session_id=session_id, checkout_expires_at=expires_at)
    )


async def release(database: Database, user_id: str, holder: str) -> None:
    """The holder's checkout failed before a session existed: give the slot back."""
    async with database.engine.begin() as connection:
        await connection.execute(
            delete(_SLOTS).where(
                _SLOTS.c.user_id == user_id,
                _SLOTS.c.holder == holder,
                _SLOTS.c.subscription_id.is_(None),
            )
        )


async def release_checkout(session: AsyncSession, checkout_session_id: str) -> None:
    """The session expired or its payment failed: free a slot that holds only it."""
    await session.execute(
        delete(_SLOTS).where(
            _SLOTS.c.checkout_session_id == checkout_session_id,
            _SLOTS.c.subscription_id.is_(None),
        )
    )


async def hold_subscription(
    session: AsyncSession, user_id: str, subscription_id: str, holder: str | None
) -> None:
    """A live subscription holds its user's slot (whoever held it for its checkout)."""
    statement = _insert(session.get_bind().dialect.name).values(
        user_id=user_id,
        holder=holder or subscription_id,
        subscription_id=subscription_id,
        taken_at=utcnow(),
    )
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=["user_id"],
            set_={"subscription_id": statement.excluded.subscription_id},
            where=_SLOTS.c.subscription_id.is_(None),
        )
    )


async def release_subscription(
    session: AsyncSession, user_id: str, subscription_id: str, holder: str | None
) -> None:
    """The subscription ended: free its slot, also when its checkout still holds it (the end
    was applied before the subscription's first snapshot)."""
    held_by_it = _SLOTS.c.subscription_id == subscription_id
    if holder:
        held_by_it = or_(
            held_by_it, and_(_SLOTS.c.subscription_id.is_(None), _SLOTS.c.holder == holder)
        )
    await session.execute(delete(_SLOTS).where(_SLOTS.c.user_id == user_id, held_by_it))
