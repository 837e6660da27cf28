"""The webhook intake, ``POST /webhooks/stripe``: verify Stripe's signature on the raw body,
journal the event once, wake the worker, answer at once. The worker applies it afterwards
(``worker.py``); the operators' view of the journal (list, replay) is here too.

Like every private route it requires the internal credential (Stripe reaches it only through the
gateway), and on top of that Stripe's signature over the exact bytes.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated, Any, NamedTuple

import msgspec
from litestar import Request, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.params import PathParameter, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_202_ACCEPTED
from sqlalchemy.ext.asyncio import AsyncSession
from stripe import SignatureVerificationError, WebhookSignature

from facturation_service import journal
from facturation_service.journal import (
    EventEnvelope,
    EventStatus,
    JournalWriteError,
    JournalWriter,
)
from facturation_service.schemas import WebhookAck, WebhookEventList, WebhookEventView
from facturation_service.worker import HANDLED_EVENT_TYPES, WebhookWorker
from shared import (
    DEFAULT_MAX_BODY_BYTES,
    RELAY_MEDIA_TYPE,
    RELAY_PATH,
    BadRequestError,
    ConflictError,
    ContentTooLargeError,
    NotFoundError,
    ServiceUnavailableError,
    relay_body_limit,
)

__all__ = [
    "RELAY_BODY_LIMIT",
    "ROUTE_HANDLERS",
    "SIGNATURE_HEADER",
    "SIGNATURE_TOLERANCE_SECONDS",
    "WEBHOOK_PATH",
    "Admitted",
    "WebhookIntake",
    "verify_signature",
]

logger = logging.getLogger("facturation_service.webhooks")

WEBHOOK_PATH = "/webhooks/stripe"
RELAY_BODY_LIMIT = relay_body_limit(DEFAULT_MAX_BODY_BYTES)
"""The largest relay request the app's lane takes (it is built with the default body limit)."""
SIGNATURE_TOLERANCE_SECONDS = 300
SIGNATURE_HEADER = "Stripe-Signature"
_NO_MATCH = "no signature matches"


class Admitted(NamedTuple):
    """A delivery whose signature and envelope the intake accepted: what the journal stores."""

    envelope: EventEnvelope
    payload: str
    handled: bool


class WebhookIntake:
    """Built once by the app around its journal writer (group commit) and its worker.

    A delivery is admitted (:meth:`admit`: signature, then envelope), journaled
    (:meth:`journal`) and acknowledged (:meth:`acknowledge`); :meth:`receive` does the three for
    one delivery, and the relay route (``webhook_lane.py``) for several at once.
    """

    def __init__(self, secrets: list[str], writer: JournalWriter, worker: WebhookWorker) -> None:
        self.secrets = secrets
        self.writer = writer
        self.worker = worker

    async def receive(self, body: bytes, signature: str | None) -> WebhookAck:
        admitted = self.admit(body, signature)
        stored: bool | BaseException
        try:
            stored = await self.journal(admitted)
        except JournalWriteError as exc:
            stored = exc
        return self.acknowledge(admitted, stored)

    def admit(self, body: bytes, signature: str | None) -> Admitted:
        """Raises:
        BadRequestError: a missing, malformed, unmatched or stale signature, or no event.
        ServiceUnavailableError: no signing secret is configured.
        """
        # Verified over the exact bytes Stripe signed; JSON is parsed only afterwards.
        payload = verify_signature(body, signature, self.secrets)
        envelope = decode_envelope(body)
        return Admitted(envelope, payload, envelope.type in HANDLED_EVENT_TYPES)

    def journal(self, admitted: Admitted) -> asyncio.Future[bool]:
        """Its event into the journal's next batch: the future of whether it was stored now
        (``False``: an earlier delivery stored it), or of the batch's failure."""
        return self.writer.record(admitted.envelope, admitted.payload, handled=admitted.handled)

    def acknowledge(self, admitted: Admitted, stored: bool | BaseException) -> WebhookAck:
        """The answer to a delivery once :meth:`journal`'s future is done (its result or its
        exception), the worker woken for an event stored now.

        Raises:
            ServiceUnavailableError: the journal could not store it; Stripe retries.
        """
        if isinstance(stored, BaseException):
            if not isinstance(stored, JournalWriteError):
                raise stored
            logger.error(
                "webhook journal write failed",
                extra={"event_id": admitted.envelope.id, "error": type(stored.__cause__).__name__},
            )
            raise ServiceUnavailableError(
                "The event could not be stored; Stripe will retry.", headers={"Retry-After": "5"}
            ) from None
        if stored and admitted.handled:
            self.worker.wake()
        return WebhookAck(id=admitted.envelope.id, duplicate=not stored, handled=admitted.handled)


def verify_signature(body: bytes, header: str | None, secrets: list[str]) -> str:
    """The body as text, if any configured secret (several during a rotation) signed it within
    the tolerance; the stripe SDK does the HMAC and timestamp checks. (Its names are imported
    once: ``stripe.WebhookSignature`` goes through the package's lazy ``__getattr__`` and an
    ``import_module`` on every access, 1.4 µs a delivery.)

    Raises:
        BadRequestError: missing, malformed, unmatched or stale signature.
    """
    if not header:
        raise BadRequestError(f"The {SIGNATURE_HEADER} header is missing.")
    if not secrets:
        # Misconfiguration, not the sender's fault: still refuse, and let Stripe retry later.
        raise ServiceUnavailableError("No webhook signing secret is configured.")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequestError("The webhook body is not UTF-8 text.") from None
    reason = _NO_MATCH
    for secret in secrets:
        try:
            WebhookSignature.verify_header(
                text, header, secret, tolerance=SIGNATURE_TOLERANCE_SECONDS
            )
        except SignatureVerificationError as exc:
            # The message names the failed check, never the secret. A stale timestamp is only
            # reported once the signature matched, so it is the more useful reason to keep.
            message = str(exc.user_message or exc)
            if "tolerance" in message or reason == _NO_MATCH:
                reason = message
            continue
        return text
    raise BadRequestError(f"Invalid {SIGNATURE_HEADER}: {reason}.")


def decode_envelope(body: bytes) -> EventEnvelope:
    try:
        return msgspec.json.decode(body, type=EventEnvelope)
    except msgspec.DecodeError as exc:
        raise BadRequestError(f"The signed body is not a Stripe event: {exc}") from None


# Deliveries that Litestar would hand this route unchanged take the lane in front of the app
# (``webhook_lane.py``); this handler answers the others and documents the route.
@post(WEBHOOK_PATH, status_code=HTTP_200_OK, summary="Receive a Stripe event")
async def receive_stripe_event(
    request: Request[Any, Any, State], webhook_intake: NamedDependency[WebhookIntake]
) -> WebhookAck:
    return await webhook_intake.receive(await request.body(), request.headers.get(SIGNATURE_HEADER))


# Every relay request the gateway sends is answered in front of the app (``webhook_lane.py``),
# delivery by delivery as each would have been answered alone. This handler documents the route
# and refuses, saying why, the requests the lane does not take: nothing of them is journaled.
@post(
    RELAY_PATH,
    status_code=HTTP_200_OK,
    media_type=RELAY_MEDIA_TYPE,
    summary="Receive Stripe deliveries the gateway relays together",
)
async def receive_relayed_deliveries(request: Request[Any, Any, State]) -> bytes:
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > RELAY_BODY_LIMIT:
        raise ContentTooLargeError(f"A relay request carries at most {RELAY_BODY_LIMIT} bytes.")
    raise BadRequestError(
        "A relay request is the gateway's: a Content-Length, a body in "
        f"{RELAY_MEDIA_TYPE} and no form."
    )


@get("/internal/v1/webhook-events", summary="List journaled Stripe events, newest first")
async def list_webhook_events(
    db_session: NamedDependency[AsyncSession],
    status: Annotated[EventStatus | None, QueryParameter()] = None,
    event_type: Annotated[str | None, QueryParameter(name="type", max_length=128)] = None,
    limit: Annotated[int, QueryParameter(ge=1, le=500)] = 50,
) -> WebhookEventList:
    events = await journal.list_events(db_session, status=status, type_=event_type, limit=limit)
    return WebhookEventList(data=[WebhookEventView.of(event) for event in events])


@post(
    "/internal/v1/webhook-events/{event_id:str}/replay",
    status_code=HTTP_202_ACCEPTED,
    summary="Apply a journaled Stripe event again",
)
async def replay_webhook_event(
    event_id: Annotated[str, PathParameter(max_length=255)],
    db_session: NamedDependency[AsyncSession],
    webhook_worker: NamedDependency[WebhookWorker],
) -> WebhookEventView:
    event = await journal.replay_event(db_session, event_id)
    if event is None:
        if await journal.get_event(db_session, event_id) is None:
            raise NotFoundError(f"No webhook event {event_id} in the journal.")
        raise ConflictError(f"Webhook event {event_id} is being processed right now.")
    webhook_worker.notify()
    return WebhookEventView.of(event)


ROUTE_HANDLERS = [
    receive_stripe_event,
    receive_relayed_deliveries,
    list_webhook_events,
    replay_webhook_event,
]
