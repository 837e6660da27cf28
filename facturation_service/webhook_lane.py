"""The lane Stripe's deliveries take: ``POST /webhooks/stripe`` straight from the ASGI server to
the intake.

Through Litestar a delivery crossed its router, two exception layers, the metrics, Host and JSON
policy middleware, the guards (whose connection object copies the scope), dependency injection
and the response machinery: together more CPU than verifying, decoding and journaling the event.
This lane does for the deliveries it takes what those layers did, in one layer:

- it takes only a ``POST`` to the exact path that Litestar would hand the route unchanged: the
  internal credential matches (the app guard; the billing-mode guard never refuses this route),
  ``Host`` present on HTTP/1.1, one ``Content-Length`` within the body limit, no
  ``Transfer-Encoding``, not a form body. Anything else goes through Litestar, which answers it
  as before (401, 400, 413, 405, ...);
- the JSON policy's depth check, then :meth:`WebhookIntake.receive`; its errors (400 signature,
  400 envelope, 503 journal) and any unexpected one (500) are answered by the app's
  problem+json handlers, as Litestar would;
- the same Prometheus series under the route's template, the request id (the caller's
  acceptable ``X-Request-ID`` or a new one, in the context and on the answer) and the same
  access log line as the request id middleware.

``python -m facturation_service`` serves it with ``shared.LaneProtocol``: a delivery the lane
takes skips uvicorn's request-response cycle as well.

The gateway's relay requests (``POST /internal/v1/webhook-deliveries``, several deliveries in
one) take this lane too: each delivery it would take alone and the intake admits joins the
journal's batch at once, without an exchange of its own, and is answered, counted and logged
as above; any other is run through the app as a request of its own.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, NamedTuple, cast

import msgspec
from litestar.enums import ScopeType

from facturation_service.webhooks import SIGNATURE_HEADER, WEBHOOK_PATH, Admitted
from shared import (
    INTERNAL_TOKEN_HEADER,
    MAX_RELAYED_DELIVERIES,
    RELAY_MEDIA_TYPE,
    RELAY_PATH,
    REQUEST_ID_HEADER,
    Answer,
    BadRequestError,
    ContentTooLargeError,
    Lane,
    RelayedAnswer,
    RelayedDelivery,
    RequestMetrics,
    accept_request_id,
    check_json_depth,
    decode_deliveries,
    encode_relay,
    internal_token_matches,
    relay_body_limit,
    request_id_var,
    send_problem,
    with_request_id,
)

if TYPE_CHECKING:
    from litestar.types import (
        ASGIApp,
        HTTPDisconnectEvent,
        HTTPRequestEvent,
        HTTPResponseBodyEvent,
        HTTPResponseStartEvent,
        HTTPScope,
        Message,
        Receive,
        Scope,
        Send,
    )

    from facturation_service.webhooks import WebhookIntake
    from shared._metrics import InFlight

__all__ = ["WebhookLane"]

_METHOD = "POST"
_PATHS = frozenset({WEBHOOK_PATH, RELAY_PATH})
_REQUEST_ID = REQUEST_ID_HEADER.lower().encode()
_INTERNAL_TOKEN = INTERNAL_TOKEN_HEADER.lower().encode()
_SIGNATURE = SIGNATURE_HEADER.lower().encode()
_FORM_TYPES = (b"application/x-www-form-urlencoded", b"multipart/form-data")
_JSON_HEADERS = [(b"content-type", b"application/json")]
# What the access log line of a relayed delivery reads of its scope.
_LOGGED_SCOPE = cast("Scope", {"type": "http", "method": _METHOD, "path": WEBHOOK_PATH})


def _signature(scope: Scope) -> str | None:
    """The delivery's first ``Stripe-Signature`` header (as :meth:`WebhookLane.take` reads the
    other ones: the first of each)."""
    for name, value in scope["headers"]:
        if name == _SIGNATURE:
            return value.decode("latin-1")
    return None


class WebhookLane(Lane):
    """Wraps the app's handler (request id middleware included); answers the deliveries it
    takes with ``intake`` directly."""

    def __init__(
        self,
        app: ASGIApp,
        intake: WebhookIntake,
        metrics: RequestMetrics,
        *,
        internal_token: str,
        max_body_bytes: int,
        max_json_depth: int,
    ) -> None:
        self.app = app
        self.intake = intake
        self.metrics = metrics
        self.internal_token = internal_token
        self.max_body_bytes = max_body_bytes
        self.max_json_depth = max_json_depth

    def take(self, scope: Scope) -> tuple[str, str | None] | None:
        """The route's template and the caller's request id, or None to leave the request to
        Litestar."""
        if scope["type"] != ScopeType.HTTP:
            return None
        path = scope["path"]
        if path not in _PATHS or scope["method"] != _METHOD or scope.get("root_path"):
            return None
        head = self._head(path, scope["headers"], scope.get("http_version"))
        return None if head is None else (path, head.request_id)

    def _head(
        self, path: str, headers: Iterable[tuple[bytes, bytes]], http_version: str | None
    ) -> _Head | None:
        """What this lane reads of a request's headers, or None when it leaves the request to
        Litestar (see the module's docstring)."""
        has_host = False
        length: bytes | None = None
        token = request_id = signature = None
        for name, value in headers:
            if name == b"content-length":
                if length is not None:
                    return None
                length = value
            elif name == b"host":
                has_host = True
            elif name == _INTERNAL_TOKEN:
                if token is None:
                    token = value.decode("latin-1")
            elif name == _REQUEST_ID:
                if request_id is None:
                    request_id = value.decode("latin-1")
            elif name == _SIGNATURE:
                if signature is None:
                    signature = value.decode("latin-1")
            elif name == b"transfer-encoding" or (
                name == b"content-type" and value.lower().startswith(_FORM_TYPES)
            ):
                return None
        if (
            (not has_host and http_version == "1.1")
            or length is None
            or not length.isdigit()
            or int(length) > self._body_limit(path)
            or not internal_token_matches(token, self.internal_token)
        ):
            return None
        return _Head(request_id, signature)

    def _body_limit(self, path: str) -> int:
        return relay_body_limit(self.max_body_bytes) if path == RELAY_PATH else self.max_body_bytes

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Verify, journal and acknowledge one delivery taken by :meth:`take` (or the several
        deliveries of one relay request)."""
        body = await self._read_body(receive, self._body_limit(scope["path"]))
        if body is None:
            return  # the client left: nobody to answer
        if scope["path"] == RELAY_PATH:
            await self._relayed(scope, body, send)
            return
        check_json_depth(body, self.max_json_depth)
        ack = await self.intake.receive(body, _signature(scope))
        content = msgspec.json.encode(ack)
        start: HTTPResponseStartEvent = {
            "type": "http.response.start",
            "status": 200,
            "headers": [*_JSON_HEADERS, (b"content-length", str(len(content)).encode())],
        }
        await send(start)
        whole: HTTPResponseBodyEvent = {
            "type": "http.response.body",
            "body": content,
            "more_body": False,
        }
        await send(whole)

    async def _relayed(self, scope: Scope, body: bytes, send: Send) -> None:
        """Each delivery of a relay request answered as if it had come alone, all at once (their
        events share the journal's batches); the answers in their order."""
        try:
            deliveries = decode_deliveries(body)
        except msgspec.DecodeError as exc:
            raise BadRequestError(f"The relayed deliveries cannot be read: {exc}") from None
        if len(deliveries) > MAX_RELAYED_DELIVERIES:
            raise BadRequestError(
                f"A relay request carries at most {MAX_RELAYED_DELIVERIES} deliveries."
            )
        host = [(name, value) for name, value in scope["headers"] if name == b"host"][:1]
        content = encode_relay(await self._answer_all(scope, host, deliveries))
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", RELAY_MEDIA_TYPE.encode()),
                    (b"content-length", str(len(content)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": content, "more_body": False})

    async def _answer_all(
        self, relay_scope: Scope, host: list[tuple[bytes, bytes]], deliveries: list[RelayedDelivery]
    ) -> list[RelayedAnswer]:
        """The answers to relayed deliveries, in their order.

        A delivery that this lane takes and the intake admits is journaled with the others and
        answered here, with its own request id, series and access log line but no exchange of
        its own: running each through the lane as a request cost more than admitting it. Any
        other delivery goes the whole way alone (:meth:`_answer_alone`), where it is refused,
        or answered by Litestar, exactly as if it had come alone."""
        http_version = relay_scope.get("http_version")
        admitted: list[tuple[int, _Journaled]] = []
        alone: list[int] = []
        for index, delivery in enumerate(deliveries):
            journaled = self._admit(host, delivery, http_version)
            if journaled is None:
                alone.append(index)
            else:
                admitted.append((index, journaled))
        answers: list[RelayedAnswer | None] = [None] * len(deliveries)
        finished = 0
        try:
            stored, answered_alone = await asyncio.gather(
                # The journal's futures themselves: no task per delivery.
                asyncio.gather(
                    *(self.intake.journal(journaled.admitted) for _, journaled in admitted),
                    return_exceptions=True,
                ),
                asyncio.gather(
                    *(self._answer_alone(relay_scope, host, deliveries[index]) for index in alone)
                ),
            )
            for index, answer in zip(alone, answered_alone, strict=True):
                answers[index] = answer
            for (index, journaled), outcome in zip(admitted, stored, strict=True):
                token = request_id_var.set(journaled.request_id)
                try:
                    try:
                        answer = self._acknowledged(journaled, outcome)
                    except Exception as exc:  # the journal failed: a problem, as alone
                        scope = _delivery_scope(relay_scope, host, deliveries[index].headers)
                        answer = await _problem(scope, exc, journaled.request_id)
                    finished += 1
                    self._closed(journaled, answer.status)
                finally:
                    request_id_var.reset(token)
                answers[index] = answer
        finally:
            # Left unanswered (the relay request was cancelled, its caller gone): closed as
            # :class:`shared.Lane` closes an exchange that never answered.
            for _, journaled in admitted[finished:]:
                token = request_id_var.set(journaled.request_id)
                try:
                    self._closed(journaled, None)
                finally:
                    request_id_var.reset(token)
        return cast("list[RelayedAnswer]", answers)

    def _closed(self, journaled: _Journaled, status: int | None) -> None:
        """An admitted delivery's series and access log line, by :meth:`shared.Lane.closed`
        (``status`` None: it never answered)."""
        answer = Answer()
        if status is not None:
            answer.status = status
            answer.answered = True
            answer.seconds = time.perf_counter() - journaled.started
        self.closed(_LOGGED_SCOPE, WEBHOOK_PATH, answer, journaled.running, journaled.started)

    def _admit(
        self,
        host: list[tuple[bytes, bytes]],
        delivery: RelayedDelivery,
        http_version: str | None,
    ) -> _Journaled | None:
        """The delivery admitted and counted in progress, or None for one to answer alone."""
        body = delivery.body
        head = self._head(WEBHOOK_PATH, [*host, *delivery.headers], http_version)
        if head is None or len(body) > self.max_body_bytes:
            return None
        try:
            check_json_depth(body, self.max_json_depth)
            admitted = self.intake.admit(body, head.signature)
        except Exception:  # refused: alone, it gets the same refusal
            return None
        started = time.perf_counter()
        running = self.metrics.started(_METHOD, WEBHOOK_PATH)
        return _Journaled(admitted, accept_request_id(head.request_id), running, started)

    def _acknowledged(self, journaled: _Journaled, stored: bool | BaseException) -> RelayedAnswer:
        """The answer :meth:`handle` would have sent (raises as :meth:`WebhookIntake.acknowledge`
        does)."""
        content = msgspec.json.encode(self.intake.acknowledge(journaled.admitted, stored))
        return RelayedAnswer(
            200,
            [
                *_JSON_HEADERS,
                (b"content-length", str(len(content)).encode()),
                (_REQUEST_ID, journaled.request_id.encode()),
            ],
            content,
        )

    async def _answer_alone(
        self, relay_scope: Scope, host: list[tuple[bytes, bytes]], delivery: RelayedDelivery
    ) -> RelayedAnswer:
        """One relayed delivery through this app as a request of its own: this lane, or
        Litestar for what the lane leaves to it, with its own request id, log line and
        metrics."""
        scope = _delivery_scope(relay_scope, host, delivery.headers)
        sent = False

        async def receive() -> HTTPRequestEvent | HTTPDisconnectEvent:
            nonlocal sent
            if sent:
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": delivery.body, "more_body": False}

        capture = _Capture()
        await self(scope, receive, capture)
        return capture.answer()

    async def _read_body(self, receive: Receive, limit: int) -> bytes | None:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:  # the server holds it to Content-Length already
                raise ContentTooLargeError("The request body is larger than this server accepts.")
            chunks.append(chunk)
            if not message.get("more_body", False):
                return chunks[0] if len(chunks) == 1 else b"".join(chunks)


class _Head(NamedTuple):
    request_id: str | None
    signature: str | None


class _Journaled(NamedTuple):
    """A relayed delivery admitted by the intake, counted in progress since ``started``."""

    admitted: Admitted
    request_id: str
    running: InFlight
    started: float


def _delivery_scope(
    relay_scope: Scope, host: list[tuple[bytes, bytes]], headers: list[tuple[bytes, bytes]]
) -> HTTPScope:
    """The scope of a relayed delivery as a request of its own."""
    return cast(
        "HTTPScope",
        {
            **relay_scope,
            "path": WEBHOOK_PATH,
            "raw_path": WEBHOOK_PATH.encode(),
            "query_string": b"",
            "headers": [*host, *headers],
            "state": {},
        },
    )


class _Capture:
    """An ASGI ``send`` that keeps the answer instead of sending it."""

    def __init__(self) -> None:
        self.status = 500
        self.headers: list[tuple[bytes, bytes]] = []
        self.chunks: list[bytes] = []

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            self.headers = list(message.get("headers", []))
        elif message["type"] == "http.response.body":
            self.chunks.append(message.get("body", b""))

    def answer(self) -> RelayedAnswer:
        return RelayedAnswer(self.status, self.headers, b"".join(self.chunks))


async def _problem(scope: HTTPScope, exc: Exception, request_id: str) -> RelayedAnswer:
    """``exc`` answered as :meth:`shared.Lane.serve` answers an error, request id included."""

    async def receive() -> HTTPDisconnectEvent:  # the body was read: nothing more comes
        return {"type": "http.disconnect"}

    capture = _Capture()
    await send_problem(scope, receive, capture, exc)
    start: HTTPResponseStartEvent = {
        "type": "http.response.start",
        "status": capture.status,
        "headers": capture.headers,
    }
    with_request_id(start, request_id.encode())
    return RelayedAnswer(capture.status, list(start["headers"]), b"".join(capture.chunks))
