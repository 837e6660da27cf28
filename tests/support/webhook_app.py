"""The facturation app set up for webhook tests: signing secrets, a fast worker, and helpers to
start it, post signed events and read the journal."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import msgspec
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select

from facturation_service.app import create_app
from facturation_service.journal import EventEnvelope, record_event
from facturation_service.models import Invoice, WebhookEvent
from facturation_service.settings import FacturationSettings
from facturation_service.worker import HANDLED_EVENT_TYPES
from shared import INTERNAL_TOKEN_HEADER, Database
from tests.support import stripe_events

INTERNAL_TOKEN = "unit-internal-token"
OLD_WEBHOOK_SECRET = "whsec_test_rotated_out_0123456789abcdef"


def counted_deliveries(metrics: str, status: int) -> float:
    """``POST /webhooks/stripe`` answered with ``status``, as the app's ``/metrics`` counts it."""
    pattern = (
        r'^http_requests_total{app_name="facturation",method="POST",path="/webhooks/stripe",'
        rf'status_code="{status}"}} ([\d.]+)$'
    )
    match = re.search(pattern, metrics, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def webhook_settings(database_url: str, **overrides: Any) -> FacturationSettings:
    values: dict[str, Any] = {
        "facturation_database_url": database_url,
        "internal_token": INTERNAL_TOKEN,
        "stripe_secret_key": "sk_test_unit",
        "stripe_api_base": "https://stripe.test",
        "stripe_webhook_secret": [stripe_events.WEBHOOK_SECRET, OLD_WEBHOOK_SECRET],
        "facturation_webhook_poll_seconds": 0.05,
        "facturation_webhook_retry_base_seconds": 0.01,
        "facturation_webhook_lease_seconds": 30.0,
        # Connections opened on demand: each test starts its own app (see the unit conftest).
        "facturation_database_connections_at_start": 0,
    }
    values.update(overrides)
    return FacturationSettings(**values)


@asynccontextmanager
async def webhook_app_client(
    database_url: str, **overrides: Any
) -> AsyncIterator[AsyncTestClient[Litestar]]:
    """The app under ``webhook_settings``, started, sending the internal credential."""
    async with AsyncTestClient(create_app(webhook_settings(database_url, **overrides))) as client:
        client.headers[INTERNAL_TOKEN_HEADER] = INTERNAL_TOKEN
        yield client


async def post_event(
    client: AsyncTestClient[Litestar],
    event: dict[str, Any],
    *,
    secret: str = stripe_events.WEBHOOK_SECRET,
    timestamp: int | None = None,
) -> Any:
    body, headers = stripe_events.signed_request(event, secret, timestamp=timestamp)
    return await client.post("/webhooks/stripe", content=body, headers=headers)


async def count_events(database: Database, event_id: str | None = None) -> int:
    query = select(func.count()).select_from(WebhookEvent)
    if event_id is not None:
        query = query.where(WebhookEvent.id == event_id)
    async with database.sessionmaker() as session:
        return int((await session.execute(query)).scalar_one())


async def get_event(database: Database, event_id: str) -> WebhookEvent | None:
    async with database.sessionmaker() as session:
        return await session.get(WebhookEvent, event_id)


async def get_invoice(database: Database, invoice_id: str) -> Invoice | None:
    async with database.sessionmaker() as session:
        return await session.get(Invoice, invoice_id)


async def count_invoices(database: Database) -> int:
    async with database.sessionmaker() as session:
        query = select(func.count()).select_from(Invoice)
        return int((await session.execute(query)).scalar_one())


async def wait_until(
    read: Callable[[], Awaitable[Any]], *, within: float = 10.0, **expected: Any
) -> Any:
    """Poll ``read()`` until the object it returns has the ``expected`` attribute values."""
    deadline = time.monotonic() + within
    while True:
        value = await read()
        if value is not None and all(getattr(value, k) == v for k, v in expected.items()):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {expected}; last value: {value!r}")
        await asyncio.sleep(0.02)


async def journal_event(database: Database, event: dict[str, Any]) -> None:
    """Store an event as the receiver does after verifying it."""
    body = stripe_events.encode(event)
    envelope = msgspec.json.decode(body, type=EventEnvelope)
    async with database.sessionmaker() as session:
        await record_event(
            session, envelope, body.decode(), handled=envelope.type in HANDLED_EVENT_TYPES
        )
