"""HTTP routes. Public ones are reached through the gateway (which strips ``/api/v1``); the
``/internal/v1`` ones only by our services. Every route requires the internal credential."""

from __future__ import annotations

import ipaddress
from typing import Any

from litestar import Request, Response, get, post, put
from litestar.datastructures import CacheControlHeader, State
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, JSONBody
from sqlalchemy.ext.asyncio import AsyncSession

from auth_service.passwords import MAX_PASSWORD_LENGTH, Passwords
from auth_service.ratelimit import LoginRateLimiter
from auth_service.schemas import (
    LoginRequest,
    RegisterRequest,
    StripeCustomerRequest,
    TokenCheckResponse,
    TokenResponse,
    UserResponse,
)
from auth_service.tokens import Tokens
from auth_service.users import (
    authenticate,
    get_user,
    normalise_email,
    register_user,
    set_user_stripe_id,
)
from shared import (
    USER_EMAIL_HEADER,
    USER_ID_HEADER,
    Identity,
    UnauthorizedError,
    bearer_token,
    provide_identity,
)

__all__ = ["dependencies", "route_handlers"]

NO_STORE = CacheControlHeader(no_store=True)


def _passwords(state: State) -> Passwords:
    passwords: Passwords = state.passwords
    return passwords


def _limiter(state: State) -> LoginRateLimiter:
    limiter: LoginRateLimiter = state.login_rate_limiter
    return limiter


async def provide_passwords(state: State) -> Passwords:
    return _passwords(state)


async def provide_tokens(state: State) -> Tokens:
    tokens: Tokens = state.tokens
    return tokens


async def provide_limiter(state: State) -> LoginRateLimiter:
    return _limiter(state)


dependencies = {
    "passwords": Provide(provide_passwords),
    "tokens": Provide(provide_tokens),
    "limiter": Provide(provide_limiter),
}


def client_address(request: Request[Any, Any, Any]) -> str:
    """The gateway's ``X-Forwarded-For`` (believed because the internal credential was checked),
    else the socket peer. The last entry is the one the nearest proxy wrote."""
    forwarded = request.headers.get("x-forwarded-for", "")
    candidate = forwarded.rsplit(",", 1)[-1].strip()
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return request.client.host if request.client else "unknown"


async def refuse_registration_early(request: Request[Any, Any, Any]) -> None:
    """The refusals that need no body and no database, before either is touched: an address
    known to be over its registration limit (429), every hashing slot taken (503). In a burst
    most registrations end here, so each costs the event loop as little as it can."""
    _limiter(request.app.state).refuse_known_registration(client_address(request))
    _passwords(request.app.state).ensure_capacity()


@post("/auth/register", status_code=201, before_request=refuse_registration_early)
async def register(
    request: Request[Any, Any, Any],
    data: JSONBody[RegisterRequest],
    db_session: NamedDependency[AsyncSession],
    passwords: NamedDependency[Passwords],
    limiter: NamedDependency[LoginRateLimiter],
) -> UserResponse:
    # Again: a slot may have gone while the body was read.
    passwords.ensure_capacity()
    await limiter.record_registration(client_address(request))
    user = await register_user(
        db_session, passwords, email=data.email, password=data.password, name=data.name
    )
    return UserResponse.of(user)


# RFC 6749 §5.1: a token response must not be stored by any cache.
@post("/auth/login", status_code=200, cache_control=NO_STORE)
async def login(
    request: Request[Any, Any, Any],
    data: JSONBody[LoginRequest],
    db_session: NamedDependency[AsyncSession],
    passwords: NamedDependency[Passwords],
    tokens: NamedDependency[Tokens],
    limiter: NamedDependency[LoginRateLimiter],
) -> TokenResponse:
    email = normalise_email(data.email)
    passwords.ensure_capacity()
    await limiter.record_address_attempt(client_address(request))
    await limiter.record_account_attempt(email)
    user = None
    if len(data.password) <= MAX_PASSWORD_LENGTH:
        user = await authenticate(db_session, passwords, email=email, password=data.password)
    if user is None:
        # One answer for an unknown email and a wrong password: no account enumeration.
        raise UnauthorizedError("The email or the password is wrong.")
    await limiter.clear_account(email)
    issued = tokens.issue(user_id=user.id, email=user.email)
    return TokenResponse(access_token=issued.token, expires_in=issued.expires_in)


def _access_token(request: Request[Any, Any, Any]) -> str:
    # Repeated field lines join with ", " (RFC 9110 §5.3): two headers never parse as one token.
    return bearer_token(", ".join(request.headers.getall("authorization", [])) or None)


@post("/auth/logout", status_code=204)
async def logout(request: Request[Any, Any, Any], tokens: NamedDependency[Tokens]) -> None:
    # An already revoked token may log out again: logout is idempotent.
    claims = tokens.decode(_access_token(request))
    await tokens.revoke(claims)


@get(["/auth/jwks.json", "/.well-known/jwks.json"])
async def jwks(tokens: NamedDependency[Tokens]) -> Response[dict[str, Any]]:
    return Response(tokens.keys.jwks(), headers={"Cache-Control": "public, max-age=300"})


@get("/users/me", dependencies={"identity": Provide(provide_identity)})
async def me(
    identity: NamedDependency[Identity], db_session: NamedDependency[AsyncSession]
) -> UserResponse:
    return UserResponse.of(await get_user(db_session, identity.user_id))


@get("/internal/v1/tokens/check", cache_control=NO_STORE)
async def check_token(
    request: Request[Any, Any, Any], tokens: NamedDependency[Tokens]
) -> Response[TokenCheckResponse]:
    claims = await tokens.verify(_access_token(request))
    return Response(
        TokenCheckResponse(
            user_id=claims.user_id, email=claims.email, exp=claims.exp, jti=claims.jti
        ),
        headers={USER_ID_HEADER: claims.user_id, USER_EMAIL_HEADER: claims.email},
    )


@get("/internal/v1/users/{user_id:str}")
async def internal_user(
    user_id: FromPath[str], db_session: NamedDependency[AsyncSession]
) -> UserResponse:
    return UserResponse.of(await get_user(db_session, user_id))


@put("/internal/v1/users/{user_id:str}/stripe-customer")
async def put_stripe_customer(
    user_id: FromPath[str],
    data: JSONBody[StripeCustomerRequest],
    db_session: NamedDependency[AsyncSession],
) -> UserResponse:
    return UserResponse.of(await set_user_stripe_id(db_session, user_id, data.user_stripe_id))


route_handlers = [
    register,
    login,
    logout,
    jwks,
    me,
    check_token,
    internal_user,
    put_stripe_customer,
]
