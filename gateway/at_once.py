"""A proxied ``GET`` answered from callbacks: no task, coroutine or future per request.

Most of what the gateway forwards is a ``GET`` whose token decision is cached, sent on a kept-alive
connection and answered in one read. For those, the task, the chain of coroutines and the ASGI
messages of the ordinary path cost more CPU than the forwarding itself (docs/benchmarks.md: the
gateway spent 85 µs a request where a bare Python forwarder spent 18). :meth:`Proxy.forward_at_once`
takes such a request when its head is in, if nothing in it needs a wait (see there); then:

- the request leaves on an idle pooled connection from the server protocol's callback, with the
  same headers, budget, metrics and access log as :meth:`Proxy.__call__` gives it;
- the upstream connection calls :meth:`ForwardAtOnce.moved` after each read: when the answer's
  head is in and its whole body came with it, the answer is written at once; an answer still
  arriving (or large, or for a client that reads slowly) is streamed by a task, as the ordinary
  path streams it;
- no answer in time, or a connection refused or cut before the head, is answered 504 or 502
  problem+json by a task, as on the ordinary path; a kept-alive connection the upstream had just
  closed (nothing came back) gives the request back to the ordinary path, which sends it again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gateway.headers import response_headers
from shared import (
    UpstreamError,
    UpstreamProtocolError,
    UpstreamResponse,
    request_id_var,
    send_problem,
)

if TYPE_CHECKING:
    from gateway.proxy import Proxy, Upstream
    from shared import Lane
    from shared._http1 import Header, _Connection
    from shared._lane_protocol import LaneExchange
    from shared._metrics import InFlight

__all__ = ["ForwardAtOnce"]


class ForwardAtOnce:
    """One request :meth:`Proxy.forward_at_once` took, from its upstream request to its log
    line."""

    __slots__ = (
        "address",
        "connection",
        "exchange",
        "lane",
        "pool",
        "proxy",
        "running",
        "upstream",
    )

    def __init__(
        self,
        lane: Lane,
        proxy: Proxy,
        exchange: LaneExchange,
        upstream: Upstream,
        connection: _Connection,
        address: str,
    ) -> None:
        self.lane = lane
        self.proxy = proxy
        self.exchange = exchange
        self.upstream = upstream
        self.pool = upstream.pool  # the connection's, even should the upstream close its own
        self.connection = connection
        self.address = address
        # Counted in from here: every way out ends in _finish, or withdraws it for the ordinary
        # path to count it again.
        proxy.client_budget.take(address)
        self.running: InFlight = lane.opened(exchange.scope, exchange.template)

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
        exchange = self.exchange
        body = None if exchange.protocol.flow.write_paused else response.whole_body()
        if body is None:  # still arriving, large, or a client that reads slowly: streamed
            exchange.spawn(self._stream(response))
            return
        token = request_id_var.set(exchange.request_id)
        try:
            exchange.answer_whole(
                response.status, response_headers(response.headers, lowered=True), body
            )
        except Exception as exc:
            exchange.spawn(exchange.failed(exc))
        finally:
            response.close()
            self._finish()
            request_id_var.reset(token)

    async def _stream(self, response: UpstreamResponse) -> None:
        exchange = self.exchange
        token = request_id_var.set(exchange.request_id)
        try:
            await self.proxy.relay_answer(exchange.send, response, self.upstream.name)
        except Exception as exc:
            await exchange.failed(exc)
        finally:
            self._finish()
            request_id_var.reset(token)

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
        self.exchange.spawn(self._refuse(problem))

    async def _refuse(self, problem: Exception) -> None:
        exchange = self.exchange
        token = request_id_var.set(exchange.request_id)
        try:
            await send_problem(exchange.scope, exchange.receive, exchange.send, problem)
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
