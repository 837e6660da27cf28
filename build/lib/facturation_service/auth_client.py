"""The two private auth routes facturation uses: read a user, store its ``user_stripe_id``."""

from __future__ import annotations

import httpx
import msgspec

from shared import (
    BadGatewayError,
    ConflictError,
    GatewayTimeoutError,
    NotFoundError,
    ServiceUnavailableError,
    internal_client,
)

__all__ = ["AuthClient", "AuthUser"]


class AuthUser(msgspec.Struct, frozen=True):
    id: str
    email: str
    name: str | None = None
    user_stripe_id: str | None = None


class AuthClient:
    def __init__(self, base_url: str, internal_token: str, *, timeout: float = 5.0) -> None:
        self.http = internal_client(base_url, internal_token, timeout=timeout)

    async def close(self) -> None:
        await self.http.aclose()

    async def get_user(self, user_id: str) -> AuthUser:
        response = await self._send("GET", f"/internal/v1/users/{user_id}")
        if response.status_code == 404:
            raise NotFoundError("This user does not exist.")
        return self._user(response)

    async def store_stripe_customer(self, user_id: str, user_stripe_id: str) -> AuthUser:
        """Idempotent: auth answers 200 when the same id is stored again."""
        response = await self._send(
            "PUT",
            f"/internal/v1/users/{user_id}/stripe-customer",
            json={"user_stripe_id": user_stripe_id},
        )
        if response.status_code == 404:
            raise NotFoundError("This user does not exist.")
        if response.status_code == 409:
            raise ConflictError("Auth already holds a different Stripe customer for this user.")
        return self._user(response)

    async def _send(self, method: str, path: str, *, json: object = None) -> httpx.Response:
        try:
            return await self.http.request(method, path, json=json)
        except httpx.TimeoutException:
            raise GatewayTimeoutError("The auth service did not answer in time.") from None
        except httpx.HTTPError:
            raise ServiceUnavailableError("The auth service cannot be reached.") from None

    @staticmethod
    def _user(response: httpx.Response) -> AuthUser:
        if response.status_code != 200:
            raise BadGatewayError(f"The auth service answered {response.status_code}.")
        try:
            return msgspec.json.decode(response.content, type=AuthUser)
        except msgspec.DecodeError:  # also covers a body of the wrong shape
            raise BadGatewayError("The auth service answered an unexpected body.") from None
