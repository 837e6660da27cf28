from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import stripe
import uvicorn

from stripe_sandbox import SandboxSettings, create_app
from tests.support.processes import free_port

WEBHOOK_SECRET = "whsec_unit_test_secret"
API_KEY = "sk_test_unit_sandbox"

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


@dataclass
class Received:
    body: bytes
    signature: str


@dataclass
class WebhookReceiver:
    """A webhook endpoint that records what it gets and fails the first ``fail_first`` posts."""

    url: str = ""
    fail_first: int = 0
    posts: int = 0
    received: list[Received] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {key.decode(): value.decode() for key, value in scope["headers"]}
        self.posts += 1
        status = 500 if self.posts <= self.fail_first else 200
        if status == 200:
            self.received.append(Received(body, headers.get("stripe-signature", "")))
            self.arrived.set()
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    async def wait_for(self, count: int) -> list[Received]:
        async with asyncio.timeout(5):
            while len(self.received) < count:
                self.arrived.clear()
                await self.arrived.wait()
        return self.received


@contextlib.asynccontextmanager
async def serving(app: Any) -> AsyncIterator[str]:
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="auto")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@pytest.fixture
async def receiver() -> AsyncIterator[WebhookReceiver]:
    receiver = WebhookReceiver()
    async with serving(receiver) as url:
        receiver.url = url + "/webhooks/stripe"
        yield receiver


@pytest.fixture
async def sandbox_url(receiver: WebhookReceiver) -> AsyncIterator[str]:
    settings = SandboxSettings(
        stripe_webhook_secret=[WEBHOOK_SECRET],
        sandbox_webhook_url=receiver.url,
        sandbox_webhook_retry_base_ms=10,
    )
    async with serving(create_app(settings)) as url:
        yield url


@pytest.fixture
async def client(sandbox_url: str) -> AsyncIterator[stripe.StripeClient]:
    """Exactly as the facturation service builds its client."""
    http_client = stripe.HTTPXClient()
    yield stripe.StripeClient(
        API_KEY,
        http_client=http_client,
        base_addresses={"api": sandbox_url},
        max_network_retries=0,
    )
    await http_client.close_async()  # type: ignore[no-untyped-call]
