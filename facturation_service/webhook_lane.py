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
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, cast

import msgspec
from litestar.enums import ScopeType

from facturation_service.webhooks import SIGNATURE_HEADER, WEBHOOK_PATH
from shared import (
    INTERNAL_TOKEN_HEADER,
    MAX_RELAYED_BYTES,
    MAX_RELAYED_DELIVERIES,
    RELAY_MEDIA_TYPE,
    RELAY_PATH,
    REQUEST_ID_HEADER,
    BadRequestError,
    ContentTooLargeError,
    Lane,
    RelayedAnswer,
    RelayedDelivery,
    RequestMetrics,
    check_json_depth,
    decode_deliveries,
    encode_relay,
    internal_token_matches,
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

__all__ = ["WebhookLane"]

_METHOD = "POST"
_PATHS = frozenset({WEBHOOK_PATH, RELAY_PATH})
_REQUEST_ID = REQUEST_ID_HEADER.lower().encode()
_INTERNAL_TOKEN = INTERNAL_TOKEN_HEADER.lower().encode()
_SIGNATURE = SIGNATURE_HEADER.lower().encode()
_FORM_TYPES = (b"application/x-www-form-urlencoded", b"multipart/form-data")
_JSON_HEADERS = [(b"content-type", b"application/json")]


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
        has_host = False
        length: bytes | None = None
        token = request_id = None
        for name, value in scope["headers"]:
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
            elif name == b"transfer-encoding" or (
                name == b"content-type" and value.lower().startswith(_FORM_TYPES)
            ):
                return None
        if (
            (not has_host and scope.get("http_version") == "1.1")
            or length is None
            or not length.isdigit()
            or int(length) > self._body_limit(path)
            or not internal_token_matches(token, self.internal_token)
        ):
            return None
        return path, request_id

    def _body_limit(self, path: str) -> int:
        return (
            self.max_body_bytes + MAX_RELAYED_BYTES if path == RELAY_PATH else self.max_body_bytes
        )

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
        answers = await asyncio.gather(
            *(self._answer_alone(scope, host, delivery) for delivery in deliveries)
        )
        content = encode_relay(answers)
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

    async def _answer_alone(
        self, relay_scope: Scope, host: list[tuple[bytes, bytes]], delivery: RelayedDelivery
    ) -> RelayedAnswer:
        """One relayed delivery through this app as a request of its own: this lane, or
        Litestar for what the lane leaves to it, with its own request id, log line and
        metrics."""
        scope = cast(
            "HTTPScope",
            {
                **relay_scope,
                "path": WEBHOOK_PATH,
                "raw_path": WEBHOOK_PATH.encode(),
                "query_string": b"",
                "headers": [*host, *delivery.headers],
                "state": {},
            },
        )
        sent = False
        status = 500
        headers: list[tuple[bytes, bytes]] = []
        chunks: list[bytes] = []

        async def receive() -> HTTPRequestEvent | HTTPDisconnectEvent:
            nonlocal sent
            if sent:
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": delivery.body, "more_body": False}

        async def capture(message: Message) -> None:
            nonlocal status, headers
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self(scope, receive, capture)
        return RelayedAnswer(status, headers, b"".join(chunks))

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
