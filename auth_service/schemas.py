"""Request and response bodies. Fields are checked in ``users.py`` so bad values answer 422."""

from __future__ import annotations

from typing import Annotated

import msgspec

from auth_service.models import User
from auth_service.passwords import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH
from auth_service.users import MAX_NAME_LENGTH
from shared import documented

__all__ = [
    "LoginRequest",
    "RegisterRequest",
    "StripeCustomerRequest",
    "TokenCheckResponse",
    "TokenResponse",
    "UserResponse",
]


class RegisterRequest(msgspec.Struct, frozen=True):
    email: Annotated[str, documented(min_length=3, max_length=320)]
    password: Annotated[
        str, documented(min_length=MIN_PASSWORD_LENGTH, max_length=MAX_PASSWORD_LENGTH)
    ]
    name: Annotated[str, documented(min_length=1, max_length=MAX_NAME_LENGTH)]


class LoginRequest(msgspec.Struct, frozen=True):
    email: str
    password: str


class TokenResponse(msgspec.Struct, frozen=True):
    access_token: str
    expires_in: int
    token_type: str = "bearer"  # noqa: S105 - the OAuth token type, not a secret


class UserResponse(msgspec.Struct, frozen=True):
    id: str
    email: str
    name: str
    user_stripe_id: str | None

    @classmethod
    def of(cls, user: User) -> UserResponse:
        return cls(id=user.id, email=user.email, name=user.name, user_stripe_id=user.user_stripe_id)


class TokenCheckResponse(msgspec.Struct, frozen=True):
    user_id: str
    email: str
    exp: int
    jti: str


class StripeCustomerRequest(msgspec.Struct, frozen=True):
    user_stripe_id: Annotated[str, documented(pattern="^cus_[A-Za-z0-9]{1,250}$")]
