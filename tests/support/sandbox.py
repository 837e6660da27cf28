"""The Stripe sandbox mounted in-process, for unit tests: its ASGI app behind an httpx transport,
so stripe-python talks to it as over the network, on the test's own event loop. End-to-end tests
and benchmarks run the same app as a process (``python -m stripe_sandbox serve``)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import stripe
from litestar import Litestar

from facturation_service.stripe_api import StripeApi
from stripe_sandbox import SandboxSettings, create_app
from stripe_sandbox.api import ConnectionDropped
from stripe_sandbox.faults import Faults
from stripe_sandbox.request_log import LoggedRequest, RequestLog
from stripe_sandbox.state import SandboxState
from tests.support.lifespan import app_lifespan

__all__ = ["SANDBOX_URL", "InProcessSandbox", "SandboxTransport"]

SANDBOX_URL = "https://stripe.test"
SANDBOX_KEY = "sk_test_in_process"


class SandboxTransport(httpx.AsyncBaseTransport):
    """``httpx.ASGITransport`` plus what a network adds: the client's read timeout (a hung
    request ends in ``httpx.ReadTimeout``), and a connection the server drops mid-answer seen as
    ``httpx.RemoteProtocolError``, as over a socket."""

    def __init__(self, app: Litestar) -> None:
        self._asgi = httpx.ASGITransport(app=app)  # type: ignore[arg-type]

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        timeout = request.extensions.get("timeout", {}).get("read")
        try:
            async with asyncio.timeout(timeout):
                return await self._asgi.handle_async_request(request)
        except TimeoutError:
            raise httpx.ReadTimeout(
                "The sandbox did not answer in time.", request=request
            ) from None
        except Exception as exc:
            if _caused_by(exc, ConnectionDropped):
                raise httpx.RemoteProtocolError(
                    "peer closed connection without sending complete message body",
                    request=request,
                ) from exc
            raise


class _TransportHTTPXClient(stripe.HTTPXClient):
    """stripe-python's own async HTTP client, sending through ``transport``."""

    def __init__(self, transport: httpx.AsyncBaseTransport, *, timeout: httpx.Timeout) -> None:
        super().__init__(timeout=timeout)
        self._client_async = httpx.AsyncClient(transport=transport)


class InProcessSandbox:
    """One sandbox app; ``requests`` and ``faults`` are its live request log and fault script."""

    def __init__(self, settings: SandboxSettings | None = None) -> None:
        # No webhook deliveries unless a test asks: events are still recorded.
        self.app = create_app(settings or SandboxSettings(sandbox_webhook_url=""))

    @property
    def state(self) -> SandboxState:
        state: SandboxState = self.app.state.sandbox
        return state

    @property
    def requests(self) -> RequestLog:
        return self.state.requests

    @property
    def faults(self) -> Faults:
        return self.state.faults

    def posts(self, path: str) -> list[LoggedRequest]:
        return self.requests.matching("POST", path)

    def transport(self) -> SandboxTransport:
        return SandboxTransport(self.app)

    def http_client(self, timeout_seconds: float = 10.0) -> stripe.HTTPClient:
        """What ``StripeApi(http_client=...)`` takes: stripe's HTTPX client over this sandbox."""
        timeout = httpx.Timeout(timeout_seconds, connect=min(timeout_seconds, 5.0))
        return _TransportHTTPXClient(self.transport(), timeout=timeout)

    def stripe_api(
        self,
        secret_key: str = SANDBOX_KEY,
        *,
        timeout_seconds: float = 10.0,
        max_network_retries: int = 2,
    ) -> StripeApi:
        return StripeApi(
            secret_key,
            api_base=SANDBOX_URL,
            max_network_retries=max_network_retries,
            http_client=self.http_client(timeout_seconds),
        )

    @asynccontextmanager
    async def running(self) -> AsyncIterator[InProcessSandbox]:
        """The app's lifespan (its webhook sender), on the caller's event loop."""
        async with app_lifespan(self.app):
            yield self

    async def control(
        self, method: str, path: str, *, json: Any = None, secret_key: str = SANDBOX_KEY
    ) -> httpx.Response:
        """A call to one of the sandbox's own routes (``/sandbox/...``), as a test would make."""
        async with httpx.AsyncClient(
            transport=self.transport(),
            base_url=SANDBOX_URL,
            headers={"Authorization": f"Bearer {secret_key}"},
        ) as http:
            return await http.request(method, path, json=json)

    async def pay(self, session_id: str, card_number: str = "4242424242424242") -> dict[str, Any]:
        """Pays the Checkout Session as the embedded form would; the session as the form sees it."""
        response = await self.control(
            "POST",
            f"/sandbox/checkout/sessions/{session_id}/complete",
            json={"card_number": card_number},
        )
        response.raise_for_status()
        paid: dict[str, Any] = response.json()
        return paid


def _caused_by(exc: BaseException, kind: type[BaseException]) -> bool:
    """Whether ``kind`` is in ``exc``'s chain of causes, or in an exception group on it."""
    if isinstance(exc, kind):
        return True
    if isinstance(exc, BaseExceptionGroup) and any(_caused_by(e, kind) for e in exc.exceptions):
        return True
    cause = exc.__cause__ or exc.__context__
    return cause is not None and _caused_by(cause, kind)
