"""Stripe's deliveries to facturation: alone when they come one at a time, several in one
request when they arrive together or faster than facturation answers.

Each delivery costs both services a request of its own otherwise: its parsing, its write, its
wake-up on either side, all for a body facturation journals in a batch anyway. The relay keeps at
most ``max_in_flight`` requests to facturation under way for deliveries. The deliveries read in
one turn of the event loop leave at its end if a request is free; those that arrive while they
are all under way leave when the first comes back. A delivery that leaves alone is forwarded
exactly as any other request (nothing changes at low load); several leave in one request to
facturation's relay route (``shared/_relay.py``): each with the headers and the body it would
have been forwarded with, answered one by one as facturation would have answered it alone.

A relay request that fails (facturation unreachable, too slow, or answering something else than
the answers) fails each of its deliveries as a lone forward would have: 502 or 504, and Stripe
retries them.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Sequence
from typing import TYPE_CHECKING

import msgspec

from shared import (
    INTERNAL_TOKEN_HEADER,
    MAX_RELAYED_BYTES,
    MAX_RELAYED_DELIVERIES,
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

__all__ = ["WebhookRelay"]

logger = get_logger("gateway.webhook_relay")


def _each(exc: Exception) -> Exception:
    """A failure to raise in one of several requests: a 502 or 504 of its own, else ``exc``."""
    if isinstance(exc, BadGatewayError | GatewayTimeoutError):
        return type(exc)(exc.detail)
    return exc


_Waiting = tuple[str, RelayedDelivery, "asyncio.Future[RelayedAnswer]"]


class WebhookRelay:
    """One per gateway process, for facturation's deliveries (see the module's docstring)."""

    def __init__(self, upstream: Upstream, internal_token: bytes, *, max_in_flight: int) -> None:
        self.upstream = upstream
        self.max_in_flight = max_in_flight
        self._relay_headers = [
            (INTERNAL_TOKEN_HEADER.lower().encode(), internal_token),
            (b"content-type", RELAY_MEDIA_TYPE.encode()),
        ]
        self._in_flight = 0
        self._waiting: deque[_Waiting] = deque()
        self._flush_scheduled = False
        self._requests: set[asyncio.Task[None]] = set()

    async def deliver(
        self, target: str, headers: Sequence[tuple[bytes, bytes]], body: bytes
    ) -> RelayedAnswer:
        """Facturation's answer to one delivery (``headers`` as it would be forwarded alone).

        Raises:
            BadGatewayError | GatewayTimeoutError: as :meth:`Upstream.send` does.
        """
        return await self.enqueue(target, headers, body)

    def enqueue(
        self, target: str, headers: Sequence[tuple[bytes, bytes]], body: bytes
    ) -> asyncio.Future[RelayedAnswer]:
        """:meth:`deliver` for a caller with no coroutine (``gateway/at_once.py``): the future
        of its answer or failure; one cancelled before it leaves is not sent."""
        future: asyncio.Future[RelayedAnswer] = asyncio.get_running_loop().create_future()
        self._waiting.append((target, RelayedDelivery(list(headers), body), future))
        if self._in_flight < self.max_in_flight:
            self._schedule_flush()
        return future

    def _schedule_flush(self) -> None:
        """At the end of this turn of the loop, so the deliveries read in it leave together."""
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        while self._in_flight < self.max_in_flight and (batch := self._next_batch()):
            self._in_flight += 1
            request = self._alone(*batch[0]) if len(batch) == 1 else self._relay(batch)
            task = asyncio.get_running_loop().create_task(request)
            self._requests.add(task)
            task.add_done_callback(self._requests.discard)

    def _finished(self) -> None:
        """One request to facturation came back: the deliveries that waited leave together."""
        self._in_flight -= 1
        if self._waiting:
            self._schedule_flush()

    def _next_batch(self) -> list[_Waiting]:
        batch: list[_Waiting] = []
        size = 0
        while self._waiting and len(batch) < MAX_RELAYED_DELIVERIES:
            waiting = self._waiting[0]
            if batch and size + len(waiting[1].body) > MAX_RELAYED_BYTES:
                break
            self._waiting.popleft()
            if waiting[2].done():  # its client left while it waited
                continue
            batch.append(waiting)
            size += len(waiting[1].body)
        return batch

    async def _alone(
        self, target: str, delivery: RelayedDelivery, future: asyncio.Future[RelayedAnswer]
    ) -> None:
        """A delivery that left alone is forwarded as any other request."""
        await self._settle([future], self._forward(target, delivery))

    async def _relay(self, batch: list[_Waiting]) -> None:
        await self._settle(
            [future for _, _, future in batch],
            self._exchange([delivery for _, delivery, _ in batch]),
        )

    async def _settle(
        self,
        futures: list[asyncio.Future[RelayedAnswer]],
        request: Awaitable[list[RelayedAnswer]],
    ) -> None:
        """Each delivery's answer, or the request's failure for each (a 502 or 504 as a lone
        forward's; anything unexpected as it is), to the requests still waiting for them."""
        try:
            answers = await request
        except Exception as exc:
            for future in futures:
                if not future.done():
                    future.set_exception(_each(exc))
        else:
            for future, answer in zip(futures, answers, strict=True):
                if not future.done():
                    future.set_result(answer)
        finally:
            self._finished()

    async def _forward(self, target: str, delivery: RelayedDelivery) -> list[RelayedAnswer]:
        status, headers, content = await self._post(
            target, delivery.headers, delivery.body, content_length=True
        )
        return [RelayedAnswer(status, headers, content)]

    async def _exchange(self, deliveries: list[RelayedDelivery]) -> list[RelayedAnswer]:
        status, _, content = await self._post(
            RELAY_PATH, self._relay_headers, encode_relay(deliveries), content_length=False
        )
        try:
            if status != 200:
                raise ValueError(f"status {status}")
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

    async def _post(
        self,
        target: str,
        headers: list[tuple[bytes, bytes]],
        body: bytes,
        *,
        content_length: bool,
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        """One request to facturation and its whole answer (a webhook's answer is small).

        Raises:
            BadGatewayError | GatewayTimeoutError: as :meth:`Upstream.send` does, and when the
                answer is cut short.
        """
        response = await self.upstream.send(
            "POST", target, headers, body, content_length=content_length
        )
        try:
            content = await response.read()
        except UpstreamError as exc:
            raise BadGatewayError(f"The {self.upstream.name} service cut its answer.") from exc
        return response.status, list(response.headers), content

    async def close(self) -> None:
        """Wait for the requests under way (at shutdown, before the pools close)."""
        while self._requests:
            await asyncio.gather(*self._requests, return_exceptions=True)
