"""Users: registration, password login, lookup, and the ``user_stripe_id`` set by facturation."""

from __future__ import annotations

import re
import uuid

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from auth_service.models import User
from auth_service.passwords import Passwords, check_password_policy
from shared import ConflictError, NotFoundError, UnprocessableError

__all__ = [
    "authenticate",
    "find_user",
    "get_user",
    "normalise_email",
    "register_user",
    "set_user_stripe_id",
]

# Loose on purpose (deliverability is not our check) but ASCII only: the address travels in the
# X-User-Email header between services.
_EMAIL = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}"  # local part
    r"@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$"  # domain with at least one dot
)
_STRIPE_CUSTOMER_ID = re.compile(r"^cus_[A-Za-z0-9]{1,250}$")
MAX_NAME_LENGTH = 200


def normalise_email(email: str) -> str:
    return email.strip().lower()


def _valid_email(email: str) -> str:
    normalised = normalise_email(email)
    if len(normalised) > 320 or not _EMAIL.match(normalised):
        raise UnprocessableError("The email address is not valid.")
    return normalised


def _valid_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > MAX_NAME_LENGTH:
        raise UnprocessableError(f"The name must be 1 to {MAX_NAME_LENGTH} characters long.")
    return name


async def register_user(
    session: AsyncSession, passwords: Passwords, *, email: str, password: str, name: str
) -> User:
    email = _valid_email(email)
    name = _valid_name(name)
    check_password_policy(password)
    user = User(
        id=str(uuid.uuid4()),
        email=email,
        name=name,
        password_hash=await passwords.hash(password),
    )
    session.add(user)
    try:
        await session.commit()
    except IntegrityError:
        # The unique constraint decides a race between two registrations of one address.
        await session.rollback()
        raise ConflictError("An account with this email address already exists.") from None
    return user


async def authenticate(
    session: AsyncSession, passwords: Passwords, *, email: str, password: str
) -> User | None:
    """The user whose password this is, or ``None``.

    An unknown email costs as much time as a wrong password.
    """
    user = await session.scalar(select(User).where(User.email == email))
    matched = await passwords.verify(user.password_hash if user else None, password)
    if user is None or not matched:
        return None
    if passwords.needs_rehash(user.password_hash):
        user.password_hash = await passwords.hash(password)
        await session.commit()
    return user


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


async def find_user(session: AsyncSession, user_id: str) -> User | None:
    if not _is_uuid(user_id):
        return None
    return await session.get(User, user_id)


async def get_user(session: AsyncSession, user_id: str) -> User:
    user = await find_user(session, user_id)
    if user is None:
        raise NotFoundError("No such user.")
    return user


async def set_user_stripe_id(session: AsyncSession, user_id: str, user_stripe_id: str) -> User:
    """Store the user's Stripe customer once; the same id again is accepted, another is refused."""
    if not _STRIPE_CUSTOMER_ID.match(user_stripe_id):
        raise UnprocessableError("user_stripe_id must be a Stripe customer id (cus_...).")
    if not _is_uuid(user_id):
        raise NotFoundError("No such user.")
    # One conditional UPDATE: atomic on both databases, so two racing ids cannot both win.
    try:
        await session.execute(
            update(User)
            .where(User.id == user_id, User.user_stripe_id.is_(None))
            .values(user_stripe_id=user_stripe_id)
        )
        await session.commit()
    except IntegrityError:
        await session.rollback()
        raise ConflictError("This Stripe customer already belongs to another user.") from None
    user = await session.scalar(
        select(User).where(User.id == user_id).execution_options(populate_existing=True)
    )
    if user is None:
        raise NotFoundError("No such user.")
    if user.user_stripe_id != user_stripe_id:
        raise ConflictError("This user already has a different Stripe customer.")
    return user
