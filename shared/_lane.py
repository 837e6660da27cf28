"""What a lane in front of Litestar does for each exchange it takes, in one layer: the request id
(in the context and on the answer), the Prometheus series under the route's template, the access
log line, and problem+json for an error raised before the answer started.

A lane (the gateway's proxy lane, facturation's webhook lane) answers a hot route straight from
the ASGI server when Litestar's layers would pass the request through unchanged; these are the
parts of those layers it must still do. Every lane is a :class:`Lane`: :meth:`Lane.take` says
which requests it answers, :meth:`Lane.handle` answers one and :meth:`Lane.serve` runs it with
those parts; ``shared._lane_protocol`` calls both
itself, with no ASGI cycle in between, and any other ASGI server reaches them through
:meth:`Lane.__call__`.
"""

from __future__ import annotations

import abc
import time
from typing import TYPE_CHECKING

from shared._middleware import log_exchange, with_request_id
from shared._problems import send_problem
from shared._request_id import accept_request_id, request_id_var

if TYPE_CHECKING:
    from litestar.types import ASGIApp, Message, Receive, Scope, Send

    from shared._lane_protocol import LaneExchange
    from shared._metrics import InFlight, RequestMetrics

__all__ = ["Answer", "Lane", "observing_send"]


class Answer:
    """What the metrics and the access log need to know of one answer."""

    __slots__ = ("answered", "seconds", "status")

    def __init__(self) -> None:
        self.status = 500  # until an answer starts, for the access log
        self.seconds = 0.0  # from the start until the last body part was sent
        self.answered = False  # the answer started: an error can no longer be answered


class Lane(abc.ABC):
    """Wraps the app's handler (request id middleware included) and answers the requests it
    takes itself; the others go to ``app``. A lane says which requests it takes
    (:meth:`take`) and how it answers one (:meth:`handle`); :meth:`serve` does the rest."""

    app: ASGIApp
    metrics: RequestMetrics

    @abc.abstractmethod
    def take(self, scope: Scope) -> tuple[str, str | None] | None:
        """The route template Litestar would have matched and the caller's ``X-Request-ID``,
        or None to leave the request to Litestar. Decided from the request's head alone."""

    @abc.abstractmethod
    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer one request :meth:`take` took (an error raised before the answer started is
        answered as problem+json by :meth:`serve`)."""

    def answer_at_once(self, exchange: LaneExchange) -> bool:
        """Start answering ``exchange`` from callbacks, without a task, when this lane can
        (with :meth:`opened` and :meth:`closed` around it); False, the default, leaves it to
        :meth:`serve`, run in a task. Called by ``shared._lane_protocol`` when the request's
        turn came (no earlier request of the connection is still being answered): for a ``GET``
        once its head is in (a lane declines one with a body), for any other method once its
        whole body is in (``exchange.body``), if it came in the read in which its turn came."""
        return False

    def opened(self, scope: Scope, template: str) -> InFlight:
        """The exchange counted in progress; what :meth:`closed` takes."""
        scope["path_template"] = template
        return self.metrics.started(scope["method"], template)  # type: ignore[typeddict-item]

    def closed(
        self, scope: Scope, template: str, answer: Answer, running: InFlight, started: float
    ) -> None:
        """The exchange's Prometheus series and access log line (the request id is the
        context's)."""
        status = answer.status
        # Litestar's metrics count an exchange that never answered as a 200.
        self.metrics.finished(
            running,
            scope["method"],  # type: ignore[typeddict-item]
            template,
            status if answer.answered else 200,
            answer.seconds,
        )
        log_exchange(scope, status, started)

    def withdrawn(self, running: InFlight) -> None:
        """Uncount an exchange :meth:`opened` counted that :meth:`serve` will count again."""
        running.count -= 1

    async def serve(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        template: str,
        request_id: str,
        answer: Answer,
        started: float,
    ) -> None:
        """Run :meth:`handle` for one exchange taken by :meth:`take`, with the request id in
        the context, the Prometheus series and the access log line; ``send`` sets the request
        id on the answer and keeps ``answer`` up to date (see :func:`observing_send`)."""
        token = request_id_var.set(request_id)
        running = self.opened(scope, template)
        try:
            try:
                await self.handle(scope, receive, send)
            except Exception as exc:
                if answer.answered:
                    raise
                await send_problem(scope, receive, send, exc)
        finally:
            self.closed(scope, template, answer, running, started)
            request_id_var.reset(token)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        taken = self.take(scope)
        if taken is None:
            await self.app(scope, receive, send)
            return
        template, incoming = taken
        request_id = accept_request_id(incoming)
        answer = Answer()
        started = time.perf_counter()
        send_observed = observing_send(send, answer, request_id.encode(), started)
        await self.serve(scope, receive, send_observed, template, request_id, answer, started)


def observing_send(send: Send, answer: Answer, request_id: bytes, started: float) -> Send:
    """``send`` that sets the request id on the answer and keeps ``answer`` up to date."""

    async def send_observed(message: Message) -> None:
        if message["type"] == "http.response.start":
            answer.status = message["status"]
            answer.answered = True
            with_request_id(message, request_id)
        elif message["type"] == "http.response.body":
            answer.seconds = time.perf_counter() - started
        await send(message)

    return send_observed
