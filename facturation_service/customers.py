"""One Stripe customer per user, however many calls race to create it.

Three layers make a second customer impossible: a per-user lock in the process; on PostgreSQL a
per-user advisory lock held while Stripe is called (replicas queue behind it); and Stripe's
idempotency key derived from the user id, with the unique mapping row as the last word when two
SQLite processes race. ``user_stripe_id`` is then stored in auth; if that fails the mapping row
stays marked unconfirmed and the next call finishes the job with the same customer.

``Customers`` is the customer step of checkout and of ``POST /billing/customer``, built once by
the app with its locks and its memory of complete customers.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from sqlalchemy import select, text, update
from sqlalchemy.exc import IntegrityError

from facturation_service.auth_client import AuthApi
from facturation_service.models import StripeCustomer, utcnow
from facturation_service.stripe_api import StripeApi
from shared import BoundedCache, ConflictError, Database

__all__ = [
    "Customers",
    "EnsuredCustomer",
    "KnownCustomers",
    "UserLocks",
    "customer_idempotency_key",
]


class UserLocks:
    """An ``asyncio.Lock`` per user, dropped once nobody holds or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[str, asyncio.Lock] = {}
        self._users: dict[str, int] = {}

    @asynccontextmanager
    async def hold(self, user_id: str) -> AsyncIterator[None]:
        lock = self._locks.setdefault(user_id, asyncio.Lock())
        self._users[user_id] = self._users.get(user_id, 0) + 1
        try:
            async with lock:
                yield
        finally:
            self._users[user_id] -= 1
            if self._users[user_id] == 0:
                del self._users[user_id], self._locks[user_id]


class KnownCustomers(BoundedCache[str, str]):
    """``user_stripe_id`` by user id, for users whose customer is complete (in Stripe, here and
    in auth).

    That mapping never changes once complete, so checkout can skip the database read for it.
    Bounded: the oldest entries go first.
    """

    __slots__ = ()

    def __init__(self, max_entries: int = 100_000) -> None:
        super().__init__(max_entries)


@dataclass(frozen=True, slots=True)
class EnsuredCustomer:
    user_stripe_id: str
    created: bool
    """True when this call made the customer usable (created it, or finished storing it)."""


def customer_idempotency_key(user_id: str) -> str:
    return f"customer-create:{user_id}"


class Customers:
    def __init__(
        self,
        database: Database,
        stripe: StripeApi,
        auth: AuthApi,
        *,
        locks: UserLocks,
        known: KnownCustomers,
    ) -> None:
        self.database = database
        self.stripe = stripe
        self.auth = auth
        self.locks = locks
        self.known = known

    async def ensure_customer(self, user_id: str) -> EnsuredCustomer:
        """The user's Stripe customer, created (and stored in auth) if there is none yet."""
        if (cached := self.known.get(user_id)) is not None:
            return EnsuredCustomer(cached, created=False)
        async with self.database.engine.connect() as connection:
            # The common case, checked before any lock: a customer made and confirmed long ago.
            complete = (
                await connection.execute(
                    select(StripeCustomer.user_stripe_id).where(
                        StripeCustomer.user_id == user_id,
                        StripeCustomer.stored_in_auth_at.is_not(None),
                    )
                )
            ).scalar_one_or_none()
        if complete is not None:
            self.known.put(user_id, complete)
            return EnsuredCustomer(complete, created=False)
        async with self.locks.hold(user_id):
            async with self.database.sessionmaker() as session:
                row = await session.get(StripeCustomer, user_id)
            if row is not None and row.stored_in_auth_at is not None:
                return EnsuredCustomer(row.user_stripe_id, created=False)
            if row is None:
                row = await self._create_customer(user_id)
            await self.auth.store_stripe_customer(user_id, row.user_stripe_id)
            async with self.database.sessionmaker() as session, session.begin():
                await session.execute(
                    update(StripeCustomer)
                    .where(StripeCustomer.user_id == user_id)
                    .values(stored_in_auth_at=utcnow())
                )
            self.known.put(user_id, row.user_stripe_id)
            return EnsuredCustomer(row.user_stripe_id, created=True)

    async def _create_customer(self, user_id: str) -> StripeCustomer:
        database = self.database
        try:
            async with database.sessionmaker() as session, session.begin():
                if not database.is_sqlite:
                    await session.execute(
                        text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
                        {"key": f"stripe-customer:{user_id}"},
                    )
                existing = await session.get(StripeCustomer, user_id)
                if existing is not None:
                    return existing
                user = await self.auth.get_user(user_id)
                customer = await self.stripe.create_customer(
                    user_id=user_id,
                    email=user.email,
                    name=user.name,
                    idempotency_key=customer_idempotency_key(user_id),
                )
                row = StripeCustomer(user_id=user_id, user_stripe_id=customer.id, email=user.email)
                session.add(row)
            return row
        except IntegrityError:
            # Another process stored the mapping first; the idempotency key gave it the same
            # customer.
            async with database.sessionmaker() as session:
                existing = await session.get(StripeCustomer, user_id)
            if existing is None:
                raise
            return existing

    async def confirm_customer_in_auth(self, user_id: str, user_stripe_id: str) -> None:
        """The diagram's update step: only the id facturation created for this user is
        accepted."""
        async with self.database.sessionmaker() as session:
            row = await session.get(StripeCustomer, user_id)
        if row is None or row.user_stripe_id != user_stripe_id:
            raise ConflictError("This Stripe customer was not created for this user.")
        await self.auth.store_stripe_customer(user_id, user_stripe_id)
        async with self.database.sessionmaker() as session, session.begin():
            await session.execute(
                update(StripeCustomer)
                .where(
                    StripeCustomer.user_id == user_id, StripeCustomer.stored_in_auth_at.is_(None)
                )
                .values(stored_in_auth_at=utcnow())
            )
