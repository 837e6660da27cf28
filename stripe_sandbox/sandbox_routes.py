"""Routes real Stripe has no equivalent of: what the stand-in Stripe.js calls to show and pay a
session, the hosted invoice page, and controls for tests (events, delivery, latency, the request
log, scripted faults)."""

from __future__ import annotations

import html
import json
import time
from importlib import resources
from typing import Any

from litestar import Request, Response, delete, get, post
from litestar.params import FromPath

from stripe_sandbox import checkout
from stripe_sandbox.api import authenticate, error_response, json_response, sandbox_state
from stripe_sandbox.errors import StripeApiError, invalid_request, resource_missing
from stripe_sandbox.events import emit_events
from stripe_sandbox.faults import DEFAULT_HOLD_SECONDS, FAULT_KINDS
from stripe_sandbox.forms import decode_form
from stripe_sandbox.objects import Obj, new_id
from stripe_sandbox.settings import SandboxSettings
from stripe_sandbox.state import SandboxState

__all__ = ["body_of", "public_url", "sandbox_route_handlers"]

AnyRequest = Request[Any, Any, Any]


def public_url(request: AnyRequest) -> str:
    settings: SandboxSettings = request.app.state.settings
    return settings.sandbox_public_url or str(request.base_url).rstrip("/")


def _session_for_browser(request: AnyRequest, session_id: str, client_secret: str | None) -> Obj:
    """The session, if the caller holds its client secret (the browser) or a secret key."""
    session = sandbox_state(request).checkout_sessions.get(session_id)
    if client_secret is None:
        authenticate(request.headers.get("authorization"))
    elif session is not None and session["client_secret"] != client_secret:
        session = None
    if session is None:
        raise resource_missing("checkout.session", session_id)
    return session


async def body_of(request: AnyRequest) -> dict[str, Any]:
    raw = await request.body()
    if not raw:
        return {}
    if request.headers.get("content-type", "").startswith("application/json"):
        try:
            value = json.loads(raw)
        except ValueError:
            raise invalid_request("The request body is not valid JSON.") from None
        if not isinstance(value, dict):
            raise invalid_request("The request body must be a JSON object.")
        return value
    return decode_form(raw.decode("utf-8", errors="replace"))


@get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@get("/sandbox/checkout/sessions/{session_id:str}")
async def show_checkout_session(request: AnyRequest, session_id: FromPath[str]) -> Response[bytes]:
    """What the embedded form shows: no customer data beyond the email."""
    request_id = new_id("req_", 14)
    try:
        session = _session_for_browser(
            request, session_id, request.query_params.get("client_secret")
        )
    except StripeApiError as error:
        return error_response(error, request_id)
    items = sandbox_state(request).checkout_line_items[session_id]
    return json_response(
        200,
        {
            "id": session["id"],
            "status": session["status"],
            "payment_status": session["payment_status"],
            "amount_total": session["amount_total"],
            "currency": session["currency"],
            "customer_email": session["customer_email"],
            "line_items": [
                {
                    "description": item["description"],
                    "quantity": item["quantity"],
                    "amount_total": item["amount_total"],
                }
                for item in items
            ],
            "return_url": checkout.redirect_url(session),
        },
        request_id,
    )


@post("/sandbox/checkout/sessions/{session_id:str}/complete")
async def complete_checkout_session(
    request: AnyRequest, session_id: FromPath[str]
) -> Response[bytes]:
    """Pay with a test card: ``card_number`` (default 4242...), ``exp_month``, ``exp_year``,
    ``cvc``; authorised by the session's ``client_secret`` or a secret key."""
    request_id = new_id("req_", 14)
    settings: SandboxSettings = request.app.state.settings
    try:
        body = await body_of(request)
        secret = body.get("client_secret")
        _session_for_browser(request, session_id, secret if isinstance(secret, str) else None)
        card = checkout.Card(
            number=str(body.get("card_number") or "4242424242424242"),
            exp_month=_int_field(body, "exp_month", 12),
            exp_year=_int_field(body, "exp_year", time.gmtime().tm_year + 5),
            cvc=str(body.get("cvc") or "123"),
        )
        completion = checkout.complete_checkout_session(
            sandbox_state(request),
            session_id,
            card,
            now=sandbox_state(request).now(),
            public_url=public_url(request),
            account_country=settings.sandbox_account_country,
            account_name=settings.sandbox_account_name,
        )
    except StripeApiError as error:
        return error_response(error, request_id)
    emit_events(request.app, completion.events, request_id=request_id, idempotency_key=None)
    session = completion.session
    return json_response(
        200,
        {
            "id": session["id"],
            "status": session["status"],
            "payment_status": session["payment_status"],
            "invoice": session["invoice"],
            "payment_intent": session["payment_intent"],
            "return_url": checkout.redirect_url(session),
        },
        request_id,
    )


def _int_field(body: dict[str, Any], name: str, default: int) -> int:
    value = body.get(name)
    if value in (None, ""):
        return default
    try:
        return int(str(value))
    except ValueError:
        raise invalid_request(f"Invalid integer: {value}", param=name) from None


@get("/sandbox/events")
async def list_events(request: AnyRequest) -> dict[str, Any]:
    """Every event with its delivery, oldest first; ``?type=`` filters."""
    state = sandbox_state(request)
    event_type = request.query_params.get("type")
    return {
        "data": [
            {
                "id": event["id"],
                "type": event["type"],
                "created": event["created"],
                "object_id": event["data"]["object"]["id"],
                "delivery": state.deliveries[event["id"]].as_dict(),
            }
            for event in state.events.values()
            if event_type is None or event["type"] == event_type
        ]
    }


@post("/sandbox/events/{event_id:str}/resend", status_code=202)
async def resend_event(request: AnyRequest, event_id: FromPath[str]) -> Response[bytes]:
    request_id = new_id("req_", 14)
    event = sandbox_state(request).events.get(event_id)
    if event is None:
        return error_response(resource_missing("event", event_id), request_id)
    request.app.state.webhook_sender.send(event)
    return json_response(202, {"id": event_id, "resent": True}, request_id)


def _config(state: SandboxState) -> dict[str, Any]:
    return {
        "latency_ms": state.latency_ms,
        "failure_rate": state.failure_rate,
        "webhook_url": state.webhook_url,
    }


@get("/sandbox/config")
async def read_config(request: AnyRequest) -> dict[str, Any]:
    return _config(sandbox_state(request))


@post("/sandbox/config", status_code=200)
async def change_config(request: AnyRequest) -> Response[bytes]:
    """Change latency, failure rate or webhook URL at run time, for fault tests."""
    request_id = new_id("req_", 14)
    state = sandbox_state(request)
    try:
        body = await body_of(request)
        if "latency_ms" in body:
            state.latency_ms = max(0, _int_field(body, "latency_ms", 0))
        if "failure_rate" in body:
            try:
                rate = float(str(body["failure_rate"]))
            except ValueError:
                raise invalid_request(
                    "failure_rate must be a number", param="failure_rate"
                ) from None
            if not 0.0 <= rate <= 1.0:
                raise invalid_request("failure_rate must be between 0 and 1", param="failure_rate")
            state.failure_rate = rate
        if "webhook_url" in body:
            state.webhook_url = str(body["webhook_url"])
    except StripeApiError as error:
        return error_response(error, request_id)
    return json_response(200, _config(state), request_id)


@get("/sandbox/requests")
async def list_requests(request: AnyRequest) -> dict[str, Any]:
    """Every /v1 request received, oldest first; ``?method=`` and ``?path=`` filter, ``?limit=``
    keeps the newest ones. With the number held right now and the most held at once since the log
    was last cleared."""
    log = sandbox_state(request).requests
    found = log.matching(request.query_params.get("method"), request.query_params.get("path"))
    limit = request.query_params.get("limit")
    if limit is not None and limit.isdigit():
        found = found[max(0, len(found) - int(limit)) :]
    return {
        "data": [entry.as_dict() for entry in found],
        "in_flight": log.in_flight,
        "max_in_flight": log.max_in_flight,
    }


@delete("/sandbox/requests")
async def clear_requests(request: AnyRequest) -> None:
    sandbox_state(request).requests.clear()


@get("/sandbox/faults")
async def list_faults(request: AnyRequest) -> dict[str, Any]:
    return {"data": [fault.as_dict() for fault in sandbox_state(request).faults.pending]}


@post("/sandbox/faults", status_code=201)
async def add_fault(request: AnyRequest) -> Response[bytes]:
    """``{method, path, kind, count?, message?, param?, seconds?}``: the next ``count`` calls to
    ``method path`` (a glob) fail as ``kind`` says (see ``stripe_sandbox.faults``)."""
    request_id = new_id("req_", 14)
    try:
        body = await body_of(request)
        method, path, kind = (_required_str(body, name) for name in ("method", "path", "kind"))
        if kind not in FAULT_KINDS:
            raise invalid_request(f"kind must be one of {', '.join(FAULT_KINDS)}", param="kind")
        count = _int_field(body, "count", 1)
        if count < 1:
            raise invalid_request("count must be at least 1", param="count")
        seconds = _number_field(body, "seconds", DEFAULT_HOLD_SECONDS)
        fault = sandbox_state(request).faults.add(
            method,
            path,
            kind,  # type: ignore[arg-type]  # checked against FAULT_KINDS above
            count=count,
            message=_optional_str(body, "message"),
            param=_optional_str(body, "param"),
            seconds=seconds,
        )
    except StripeApiError as error:
        return error_response(error, request_id)
    return json_response(201, fault.as_dict(), request_id)


@delete("/sandbox/faults")
async def clear_faults(request: AnyRequest) -> None:
    sandbox_state(request).faults.clear()


def _required_str(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise invalid_request(
            f"Missing required param: {name}.", param=name, code="parameter_missing"
        )
    return value


def _optional_str(body: dict[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise invalid_request(f"{name} must be a string", param=name)
    return value


def _number_field(body: dict[str, Any], name: str, default: float) -> float:
    value = body.get(name)
    if value in (None, ""):
        return default
    try:
        number = float(str(value))
    except ValueError:
        raise invalid_request(f"{name} must be a number", param=name) from None
    if not 0 <= number <= 3600:
        raise invalid_request(f"{name} must be between 0 and 3600", param=name)
    return number


@get("/sandbox/invoices/{invoice_id:str}", media_type="text/html")
async def hosted_invoice(request: AnyRequest, invoice_id: FromPath[str]) -> Response[str]:
    invoice = sandbox_state(request).invoices.get(invoice_id)
    if invoice is None:
        return Response("<h1>No such invoice</h1>", status_code=404, media_type="text/html")
    rows = "".join(
        f"<tr><td>{html.escape(line['description'] or '')}</td><td>{line['quantity']}</td>"
        f"<td>{line['amount'] / 100:.2f}</td></tr>"
        for line in invoice["lines"]["data"]
    )
    page = (
        f"<!doctype html><title>Invoice {html.escape(invoice['number'] or invoice_id)}</title>"
        f"<h1>Invoice {html.escape(invoice['number'] or invoice_id)} — {invoice['status']}</h1>"
        f"<table><tr><th>Item</th><th>Qty</th><th>Amount</th></tr>{rows}</table>"
        f"<p>Total {invoice['total'] / 100:.2f} {invoice['currency'].upper()}</p>"
    )
    return Response(page, media_type="text/html")


@get(["/v3", "/v3/", "/stripe.js"], media_type="application/javascript")
async def stripe_js() -> Response[str]:
    script = resources.files("stripe_sandbox").joinpath("static/stripe.js").read_text()
    return Response(
        script, media_type="application/javascript", headers={"Cache-Control": "no-cache"}
    )


sandbox_route_handlers = [
    healthz,
    show_checkout_session,
    complete_checkout_session,
    list_events,
    resend_event,
    read_config,
    change_config,
    list_requests,
    clear_requests,
    list_faults,
    add_fault,
    clear_faults,
    hosted_invoice,
    stripe_js,
]
