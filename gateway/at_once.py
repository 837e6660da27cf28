"""Requests forwarded from callbacks: no task, coroutine or future per request.

Most of what the gateway forwards is a ``GET`` whose token decision is cached, sent on a kept-alive
connection and answered in one read. For those, the task, the chain of coroutines and the ASGI
messages of the ordinary path cost more CPU than the forwarding itself (docs/benchmarks.md: the
gateway spent 85 µs a request where a bare Python forwarder spent 18). :meth:`Proxy.forward_at_once`
takes such a request when the whole of it came in one read, if nothing in it needs a wait (see
there); then:

- the request leaves on an idle pooled connection from the server protocol's callback, with the
  same headers, budget, metrics and access log as :meth:`Proxy.__call__` gives it;
- the upstream connection calls :meth:`ForwardAtOnce.moved` after each read: when the answer's
  head is in and its whole body came with it, the answer is written at once (by a task for a
  client that reads slowly); an answer still arriving, or large, is streamed by a task, as the
  ordinary path streams it;
- no answer in time, or a connection refused or cut before the head, is answered 504 or 502
  problem+json by a task, as on the ordinary path; a kept-alive connection the upstream had just
  closed (nothing came back) gives the request back to the ordinary path, which sends it again.

Stripe's deliveries are the other kind (:class:`RelayAtOnce`): a ``POST`` to the relayed route
whose body came with its head is handed to the webhook relay from the same callback, and answered
from the relay's future as the ordinary path answers it after :meth:`WebhookRelay.deliver`: the
answer facturation gave, or the relay's 502 or 504 as problem+json.
"""

from __future__ import annotations

from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from gateway.headers import response_headers
from shared import (
    RelayedAnswer,
    UpstreamError,
    UpstreamProtocolError,
    UpstreamResponse,
    request_id_var,
    send_problem,
)

if TYPE_CHECKING:
    import asyncio

    from gateway.proxy import Proxy, Upstream
    from gateway.webhook_relay import WebhookRelay
    from shared import Lane
    from shared._http1 import Header, _Connection
    from shared._lane_protocol import LaneExchange
    from shared._metrics import InFlight

__all__ = ["ForwardAtOnce", "RelayAtOnce"]


class _AtOnce:
    """One request :meth:`Proxy.forward_at_once` took, from the moment it is counted in to its
    log line."""

    __slots__ = ("address", "exchange", "lane", "proxy", "running")

    def __init__(self, lane: Lane, proxy: Proxy, exchange: LaneExchange, address: str) -> None:
        self.lane = lane
        self.proxy = proxy
        self.exchange = exchange
        self.address = address
        # Counted in from here: every way out ends in _finish, or withdraws it for the ordinary
        # path to count it again.
        proxy.client_budget.take(address)
        self.running: InFlight = lane.opened(exchange.scope, exchange.template)

    def _answer_whole(self, status: int, headers: list[Header], body: bytes) -> None:
        """The whole answer: written from this callback, or by a task for a client whose
        writing is paused (its ``send`` waits until the client has read)."""
        exchange = self.exchange
        if exchange.protocol.flow.write_paused:
            self._answer_later(self._send_whole(status, headers, body))
            return
        token = request_id_var.set(exchange.request_id)
        try:
            exchange.answer_whole(status, headers, body)
        except Exception as exc:
            exchange.spawn(exchange.failed(exc))
        finally:
            self._finish()
            request_id_var.reset(token)

    def _answer_later(self, answering: Coroutine[Any, Any, None]) -> None:
        """The answer written by a task (``answering``), as the ordinary path writes it."""
        self.exchange.spawn(self._finished_after(answering))

    def _refuse(self, problem: Exception) -> None:
        exchange = self.exchange
        self._answer_later(send_problem(exchange.scope, exchange.receive, exchange.send, problem))

    async def _send_whole(self, status: int, headers: list[Header], body: bytes) -> None:
        send = self.exchange.send
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body, "more_body": False})

    async def _finished_after(self, answering: Coroutine[Any, Any, None]) -> None:
        exchange = self.exchange
        token = request_id_var.set(exchange.request_id)
        try:
            await answering
        except Exception as exc:
            await exchange.failed(exc)
        finally:
            self._finish()
            request_id_var.reset(token)

    def _finish(self) -> None:
        """Budget, metrics and the access log line (the request id is the context's)."""
        self.proxy.client_budget.give_back(self.address)
        exchange = self.exchange
        self.lane.closed(
            exchange.scope, exchange.template, exchange, self.running, exchange.started
        )


class ForwardAtOnce(_AtOnce):
    """A ``GET`` sent on an idle pooled connection and answered from that connection's
    reads."""

    __slots__ = ("connection", "pool", "upstream")

    def __init__(
        self,
        lane: Lane,
        proxy: Proxy,
        exchange: LaneExchange,
        upstream: Upstream,
        connection: _Connection,
        address: str,
    ) -> None:
        super().__init__(lane, proxy, exchange, address)
        self.upstream = upstream
        self.pool = upstream.pool  # the connection's, even should the upstream close its own
        self.connection = connection

    def send(self, target: str, headers: list[Header]) -> None:
        """Write the request upstream (it leaves at the end of this turn of the event loop)."""
        try:
            self.pool.send_head(self.connection, "GET", target, headers)
        except UpstreamError as exc:
            self._failed(exc)
            return
        self.connection.watch(self.moved, self.upstream.timeout)

    def moved(self) -> None:
        """The upstream connection's listener: after each read, and on an error."""
        connection = self.connection
        if connection.error is not None:
            self._failed(connection.error)
        elif connection.headers_done:
            connection.listener = None
            self._answer(UpstreamResponse(self.pool, connection, self.upstream.timeout))

    def _answer(self, response: UpstreamResponse) -> None:
        body = response.whole_body()
        if body is None:  # still arriving, or large: streamed
            self._answer_later(
                self.proxy.relay_answer(self.exchange.send, response, self.upstream.name)
            )
            return
        response.close()
        self._answer_whole(response.status, response_headers(response.headers, lowered=True), body)

    def _failed(self, error: UpstreamError) -> None:
        connection = self.connection
        connection.listener = None
        self.pool.release(connection)  # its slot back; a failed answer is never reused
        if (
            isinstance(error, UpstreamProtocolError)
            and connection.reused
            and not connection.got_bytes
        ):
            # A kept-alive connection the upstream had just closed: the ordinary path sends the
            # request again, as it does for a GET in that case.
            self.proxy.client_budget.give_back(self.address)
            self.lane.withdrawn(self.running)
            self.exchange.run_in_turn()
            return
        token = request_id_var.set(self.exchange.request_id)
        try:
            problem = self.upstream.failure(error)
        finally:
            request_id_var.reset(token)
        self._refuse(problem)


class RelayAtOnce(_AtOnce):
    """A delivery to the relayed route, its body in, answered from the relay's future."""

    __slots__ = ()

    def send(self, relay: WebhookRelay, target: str, headers: list[Header], body: bytes) -> None:
        relay.enqueue(target, headers, body).add_done_callback(self.answered)

    def answered(self, future: asyncio.Future[RelayedAnswer]) -> None:
        """The relay's future is done: facturation's answer, or the failure the relay raises
        (a 502 or 504 for each delivery of a failed relay request) as problem+json."""
        error = future.exception()
        if isinstance(error, Exception):  # the relay fails a delivery with nothing else
            self._refuse(error)
            return
        answer = future.result()
        self._answer_whole(
            answer.status, response_headers(answer.headers, lowered=True), answer.body
        )
