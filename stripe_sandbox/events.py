"""Events: recorded (GET /v1/events) and handed to the webhook sender. A ``*.updated`` event
carries ``data.previous_attributes``, the fields that differ from the object's last event."""

from __future__ import annotations

import copy
from typing import Any

from litestar import Litestar, Request

from stripe_sandbox import objects
from stripe_sandbox.objects import Obj
from stripe_sandbox.state import SandboxState
from stripe_sandbox.webhooks import WebhookSender

__all__ = ["emit_events", "emit_for_request"]


def emit_events(
    app: Litestar,
    snapshots: list[tuple[str, Obj]],
    *,
    request_id: str | None,
    idempotency_key: str | None,
    at: int | None = None,
) -> list[Obj]:
    """One event per ``(type, object snapshot)``, in that order, created ``at`` (default: the
    sandbox clock's now)."""
    state: SandboxState = app.state.sandbox
    sender: WebhookSender = app.state.webhook_sender
    now = state.now() if at is None else at
    emitted = []
    for event_type, obj in snapshots:
        previous = state.last_snapshots.get(obj["id"])
        event = objects.event(
            event_type=event_type,
            obj=copy.deepcopy(obj),
            created=now,
            request_id=request_id,
            idempotency_key=idempotency_key,
            previous_attributes=_changed(previous, obj)
            if event_type.endswith(".updated") and previous is not None
            else None,
        )
        state.events[event["id"]] = event
        state.last_snapshots[obj["id"]] = event["data"]["object"]
        sender.send(event)
        emitted.append(event)
    return emitted


def emit_for_request(
    request: Request[Any, Any, Any], snapshots: list[tuple[str, Obj]], request_id: str
) -> list[Obj]:
    """The events an API request caused, tagged with its id and its idempotency key."""
    return emit_events(
        request.app,
        snapshots,
        request_id=request_id,
        idempotency_key=request.headers.get("idempotency-key"),
    )


def _changed(previous: Obj, current: Obj) -> Obj:
    """The previous values of the top-level fields that changed, as Stripe lists them."""
    return {
        name: copy.deepcopy(value) for name, value in previous.items() if current.get(name) != value
    }
