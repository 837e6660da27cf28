"""Signed webhook delivery, as Stripe does it: ``Stripe-Signature: t=<unix>,v1=<hex>`` where v1 is
HMAC-SHA256 of ``"<t>.<payload>"`` under each active secret, retried with backoff on non-2xx."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Sequence

import httpx

from stripe_sandbox.objects import Obj
from stripe_sandbox.state import Delivery, SandboxState

__all__ = ["WebhookSender", "delivery_headers", "encode_event", "signature_header"]

logger = logging.getLogger("stripe_sandbox.webhooks")
_MAX_DELAY_SECONDS = 60.0


def encode_event(event: Obj) -> bytes:
    # Stripe sends pretty-printed JSON; receivers must verify the exact bytes, not a re-encoding.
    return json.dumps(event, indent=2).encode()


def signature_header(payload: bytes, secrets: Sequence[str], timestamp: int) -> str:
    signed = f"{timestamp}.".encode() + payload
    signatures = [
        "v1=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest() for secret in secrets
    ]
    return ",".join([f"t={timestamp}", *signatures])


def delivery_headers(payload: bytes, secrets: Sequence[str], timestamp: int) -> dict[str, str]:
    return {
        "Content-Type": "application/json; charset=utf-8",
        "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
        "Stripe-Signature": signature_header(payload, secrets, timestamp),
    }


class WebhookSender:
    """Delivers each event in its own background task, so one failing delivery never holds up
    the others — which is also why a receiver may see them out of order, as with Stripe."""

    def __init__(
        self,
        state: SandboxState,
        *,
        secrets: Sequence[str],
        max_attempts: int,
        retry_base_seconds: float,
        timeout_seconds: float,
    ) -> None:
        self.state = state
        self.secrets = list(secrets)
        self.max_attempts = max_attempts
        self.retry_base_seconds = retry_base_seconds
        self.client = httpx.AsyncClient(timeout=timeout_seconds)
        self.tasks: set[asyncio.Task[None]] = set()

    def send(self, event: Obj) -> None:
        delivery = Delivery()
        self.state.deliveries[event["id"]] = delivery
        # The event's own record of its delivery, as GET /v1/events shows it (issue 12).
        event["pending_webhooks"] = 1
        if not self.state.webhook_url or not self.secrets:
            delivery.status = "disabled"
            return
        task = asyncio.create_task(self._deliver(event, delivery))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _deliver(self, event: Obj, delivery: Delivery) -> None:
        payload = encode_event(event)
        while True:
            delivery.attempts += 1
            headers = delivery_headers(payload, self.secrets, int(time.time()))
            try:
                response = await self.client.post(
                    self.state.webhook_url, content=payload, headers=headers
                )
                delivery.last_status_code = response.status_code
                delivery.last_error = None if response.is_success else response.text[:500]
            except httpx.HTTPError as exc:
                delivery.last_status_code = None
                delivery.last_error = f"{type(exc).__name__}: {exc}"
            if delivery.last_error is None:
                delivery.status = "delivered"
                event["pending_webhooks"] = 0
                return
            if delivery.attempts >= self.max_attempts:
                delivery.status = "failed"
                logger.warning(
                    "webhook delivery failed",
                    extra={"event_id": event["id"], "attempts": delivery.attempts},
                )
                return
            delay = min(self.retry_base_seconds * 2 ** (delivery.attempts - 1), _MAX_DELAY_SECONDS)
            await asyncio.sleep(delay)

    async def aclose(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.client.aclose()
