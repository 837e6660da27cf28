"""What the webhook benches send and where: distinct signed ``invoice.paid`` deliveries, and the
stack that receives them (the real gateway and facturation service, facturation's Stripe calls
pointed at a closed port: no event here needs one)."""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractAsyncContextManager
from pathlib import Path

from sqlalchemy import func, select, text

from facturation_service.journal import EventStatus
from facturation_service.models import UNPROCESSED_EVENTS, WebhookEvent
from shared import Database
from tests.support import stripe_events
from tests.support.stack import Stack, start_stack

__all__ = ["all_applied", "check_processed", "receiving_stack", "signed_invoice_deliveries"]

_WAITING = select(select(WebhookEvent.id).where(text(UNPROCESSED_EVENTS)).exists())


async def all_applied(database: Database) -> bool:
    """Whether the journal holds no event still waiting or being applied. The benches ask it
    every few milliseconds while the worker applies: it stops at the first such event, where
    counting the processed ones read the whole journal each time, and PostgreSQL's CPU for that
    (4 ms a count of 40,000 events, 13 µs an applied event, by ``bench_webhooks``' second
    round) was counted as the service's."""
    async with database.sessionmaker() as session:
        return not (await session.execute(_WAITING)).scalar_one()


async def check_processed(database: Database, total: int) -> None:
    """Once nothing is left to apply: every one of the ``total`` events so far was processed
    (none failed), else the bench stops."""
    async with database.sessionmaker() as session:
        query = select(func.count()).where(WebhookEvent.status == EventStatus.PROCESSED)
        processed = int((await session.execute(query)).scalar_one())
    if processed != total:
        raise SystemExit(f"{processed} events processed of {total}: see the journal")


def signed_invoice_deliveries(count: int, secret: str) -> list[tuple[bytes, str]]:
    """``count`` distinct ``invoice.paid`` events of 200 customers: each body and its
    ``Stripe-Signature``."""
    deliveries = []
    for index in range(count):
        invoice = stripe_events.invoice("paid", customer=f"cus_Bench{index % 200:05d}")
        body = stripe_events.encode(stripe_events.event("invoice.paid", invoice))
        deliveries.append((body, stripe_events.sign(body, secret)))
    return deliveries


def receiving_stack(
    folder: Path,
    secret: str,
    facturation_env: Mapping[str, str],
    gateway_env: Mapping[str, str] | None = None,
) -> AbstractAsyncContextManager[Stack]:
    """The gateway and the real facturation service, verifying with ``secret``."""
    return start_stack(
        folder,
        facturation_url="start",
        extra_env={"LOG_LEVEL": "WARNING"},
        facturation_env={
            "STRIPE_API_BASE": "http://127.0.0.1:9",
            "STRIPE_WEBHOOK_SECRET": secret,
            **facturation_env,
        },
        gateway_env=gateway_env,
    )
