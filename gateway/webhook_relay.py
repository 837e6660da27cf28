"""Stripe's deliveries to facturation: alone when facturation keeps up, several in one request
when they arrive faster than it answers.

Each delivery costs both services a request of its own otherwise: its parsing, its write, its
wake-up on either side, all for a body facturation journals in a batch anyway. The relay keeps at
most ``max_in_flight`` requests to facturation under way for deliveries. A delivery that finds a
free one is forwarded at once, alone, exactly as any other request (nothing changes at low load).
A delivery that arrives while they are all under way waits for the first of them to come back,
and leaves then with every delivery that waited meanwhile, in one request to facturation's relay
route (``shared/_relay.py``): each with the headers and the body it would have been forwarded
with, answered one by one as facturation would have answered it alone.

A relay request that fails (facturation unreachable, too slow, or answering something else than
the answers) fails each of its deliveries as a lone forward would have: 502 or 504, and Stripe
retries them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING

import msgspec

from shared import (
    INTERNAL_TOKEN_HEADER,
    RELAY_MEDIA_TYPE,
    RELAY_PATH,
    BadGatewayError,
    GatewayTimeoutError,
    RelayedAnswer,
    RelayedDelivery,
    UpstreamError,
    decode_answers,
    encode_relay,
    get_logger,
)

if TYPE_CHECKING:
    from gateway.proxy import Upstream

__all__ = ["MAX_RELAYED_BYTES", "MAX_RELAYED_DELIVERIES", "WebhookRelay"]

logger = get_logger("gateway.webhook_relay")

MAX_RELAYED_DELIVERIES = 64
"""Deliveries in one relay request at most; the others wait for the next."""
MAX_RELAYED_BYTES = 4 * 1024 * 1024
"""Bodies in one relay request at most (its first delivery always goes, whatever its size)."""

_Waiting = tuple[RelayedDelivery, "asyncio.Future[RelayedAnswer]"]


class WebhookRelay:
    def __init__(self, upstream: Upstream, internal_token: bytes, *, max_in_flight: int) -> None:
        self.upstream = upstream
        self.max_in_flight = max_in_flight
        self._relay_headers = [
            (INTERNAL_TOKEN_HEADER.lower().encode(), internal_token),
            (b"content-type", RELAY_MEDIA_TYPE.encode()),
        ]
        self._in_flight = 0
        self._waiting: list[_Waiting] = []
        self._relays: set[asyncio.Task[None]] = set()

    async def deliver(
        self, target: str, headers: Sequence[tuple[bytes, bytes]], body: bytes
    ) -> RelayedAnswer:
        """Facturation's answer to one delivery (``headers`` as it would be forwarded alone).

        Raises:
            BadGatewayError | GatewayTimeoutError: as :meth:`Upstream.send` does.
        """
        if self._in_flight < self.max_in_flight and not self._waiting:
            self._in_flight += 1
            try:
                return await self._alone(target, headers, body)
            finally:
                self._finished()
        future: asyncio.Future[RelayedAnswer] = asyncio.get_running_loop().create_future()
        self._waiting.append((RelayedDelivery(list(headers), body), future))
        return await future

    async def _alone(
        self, target: str, headers: Sequence[tuple[bytes, bytes]], body: bytes
    ) -> RelayedAnswer:
        response = await self.upstream.send("POST", target, headers, body, content_length=True)
        try:
            content = await response.read()
        except UpstreamError as exc:
            raise BadGatewayError(f"The {self.upstream.name} service cut its answer.") from exc
        return RelayedAnswer(response.status, list(response.headers), content)

    def _finished(self) -> None:
        """One request to facturation came back: the deliveries that waited leave together."""
        self._in_flight -= 1
        batch = self._next_batch()
        if batch:
            self._in_flight += 1
            task = asyncio.get_running_loop().create_task(self._relay(batch))
            self._relays.add(task)
            task.add_done_callback(self._relays.discard)

    def _next_batch(self) -> list[_Waiting]:
        batch: list[_Waiting] = []
        size = 0
        while self._waiting and len(batch) < MAX_RELAYED_DELIVERIES:
            delivery, future = self._waiting[0]
            if batch and size + len(delivery.body) > MAX_RELAYED_BYTES:
                break
            del self._waiting[0]
            if future.done():  # its client left while it waited
                continue
            batch.append((delivery, future))
            size += len(delivery.body)
        return batch

    async def _relay(self, batch: list[_Waiting]) -> None:
        try:
            answers = await self._exchange([delivery for delivery, _ in batch])
        except (BadGatewayError, GatewayTimeoutError) as exc:
            failure = type(exc)
            for _, future in batch:
                if not future.done():
                    future.set_exception(failure(exc.detail))
        else:
            for (_, future), answer in zip(batch, answers, strict=True):
                if not future.done():
                    future.set_result(answer)
        finally:
            self._finished()

    async def _exchange(self, deliveries: list[RelayedDelivery]) -> list[RelayedAnswer]:
        response = await self.upstream.send(
            "POST", RELAY_PATH, self._relay_headers, encode_relay(deliveries), content_length=False
        )
        try:
            content = await response.read()
        except UpstreamError as exc:
            raise BadGatewayError(f"The {self.upstream.name} service cut its answer.") from exc
        try:
            if response.status != 200:
                raise ValueError(f"status {response.status}")
            answers = decode_answers(content)
            if len(answers) != len(deliveries):
                raise ValueError(f"{len(answers)} answers to {len(deliveries)} deliveries")
        except (ValueError, msgspec.DecodeError) as exc:
            logger.warning(
                "relay answer refused", extra={"upstream": self.upstream.name, "error": str(exc)}
            )
            raise BadGatewayError(
                f"The {self.upstream.name} service did not answer the relayed deliveries."
            ) from None
        return answers

    async def close(self) -> None:
        """Wait for the relay requests under way (at shutdown, before the pools close)."""
        if self._relays:
            await asyncio.gather(*self._relays, return_exceptions=True)
