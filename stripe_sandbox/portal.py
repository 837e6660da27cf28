"""The customer portal a ``billing_portal.session`` URL opens: the customer's subscriptions, a
button to cancel each at its period's end or to resume it, and a link back to ``return_url``.

Plain HTML forms (no script), with stable hooks for browser tests::

    main#portal[data-customer]
      li.subscription#sub-<id>[data-subscription][data-status][data-cancel-at-period-end]
        [data-field=status] · [data-field=period-end][data-value=<unix>]
        form > button[data-action=cancel] | button[data-action=resume]
      p#no-subscriptions (when there are none)
      a#return-link[data-action=return]

A form posts to ``/sandbox/portal/{bps}/subscriptions/{sub}/cancel|resume``, which applies the
change (event ``customer.subscription.updated``) and redirects back here (303); a client asking
for ``application/json`` gets the subscription instead.
"""

from __future__ import annotations

import html
import time
from typing import Any

from litestar import Request, Response, get, post
from litestar.params import FromPath
from litestar.response import Redirect

from stripe_sandbox import subscriptions
from stripe_sandbox.api import error_response, json_response, sandbox_state
from stripe_sandbox.errors import StripeApiError, resource_missing
from stripe_sandbox.events import emit_events
from stripe_sandbox.objects import Obj, new_id
from stripe_sandbox.state import SandboxState

__all__ = ["portal_route_handlers"]

AnyRequest = Request[Any, Any, Any]


def _day(timestamp: int) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(timestamp))


def _row(state: SandboxState, portal_id: str, sub: Obj) -> str:
    item = sub["items"]["data"][0]
    name = state.product_names.get(item["price"]["product"], item["price"]["product"])
    end = item["current_period_end"]
    if sub["status"] == "canceled":
        when, button = f"Ended on {_day(sub['ended_at'] or end)}", ""
    elif sub["cancel_at_period_end"]:
        when = f"Ends on {_day(end)}"
        button = _form(portal_id, sub["id"], "resume", "Resume subscription")
    else:
        when = f"Renews on {_day(end)}"
        button = _form(portal_id, sub["id"], "cancel", "Cancel at period end")
    sub_id = html.escape(sub["id"])
    return (
        f'<li class="subscription" id="sub-{sub_id}" data-subscription="{sub_id}" '
        f'data-status="{html.escape(sub["status"])}" '
        f'data-cancel-at-period-end="{str(sub["cancel_at_period_end"]).lower()}">'
        f'<strong class="name">{html.escape(name)}</strong> '
        f'<span data-field="status">{html.escape(sub["status"])}</span> '
        f'<span data-field="period-end" data-value="{end}">{when}</span>'
        f"{button}</li>"
    )


def _form(portal_id: str, sub_id: str, action: str, label: str) -> str:
    target = f"/sandbox/portal/{html.escape(portal_id)}/subscriptions/{html.escape(sub_id)}"
    return (
        f'<form method="post" action="{target}/{action}">'
        f'<button type="submit" data-action="{action}">{label}</button></form>'
    )


def _page(state: SandboxState, portal: Obj) -> str:
    customer = state.customers.get(portal["customer"]) or {}
    subs = [sub for sub in state.subscriptions.values() if sub["customer"] == portal["customer"]]
    rows = "".join(_row(state, portal["id"], sub) for sub in reversed(subs))
    listing = (
        f'<ul id="subscriptions">{rows}</ul>'
        if rows
        else '<p id="no-subscriptions">No subscriptions.</p>'
    )
    back = ""
    if portal["return_url"]:
        back = (
            f'<p><a id="return-link" data-action="return" '
            f'href="{html.escape(portal["return_url"])}">Return</a></p>'
        )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        "<title>Billing portal (sandbox)</title></head><body>"
        f'<main id="portal" data-customer="{html.escape(portal["customer"])}">'
        "<h1>Your subscriptions</h1>"
        f'<p id="customer-email">{html.escape(customer.get("email") or "")}</p>'
        f"{listing}{back}</main></body></html>"
    )


@get("/sandbox/portal/{portal_id:str}", media_type="text/html")
async def show_portal(request: AnyRequest, portal_id: FromPath[str]) -> Response[str]:
    state = sandbox_state(request)
    portal = state.portal_sessions.get(portal_id)
    if portal is None:
        return Response(
            "<!doctype html><h1>No such portal session</h1>",
            status_code=404,
            media_type="text/html",
        )
    return Response(_page(state, portal), media_type="text/html")


def _change(request: AnyRequest, portal_id: str, sub_id: str, cancel: bool) -> Response[Any]:
    request_id = new_id("req_", 14)
    state = sandbox_state(request)
    try:
        portal = state.portal_sessions.get(portal_id)
        if portal is None:
            raise resource_missing("billing_portal.session", portal_id)
        sub = state.subscriptions.get(sub_id)
        if sub is None or sub["customer"] != portal["customer"]:
            raise resource_missing("subscription", sub_id)
        events = subscriptions.set_cancel_at_period_end(sub, cancel, now=state.now())
    except StripeApiError as error:
        return error_response(error, request_id)
    emit_events(request.app, events, request_id=request_id, idempotency_key=None)
    if "application/json" in request.headers.get("accept", ""):
        return json_response(200, sub, request_id)
    return Redirect(f"/sandbox/portal/{portal_id}", status_code=303)


@post("/sandbox/portal/{portal_id:str}/subscriptions/{sub_id:str}/cancel")
async def cancel_from_portal(
    request: AnyRequest, portal_id: FromPath[str], sub_id: FromPath[str]
) -> Response[Any]:
    return _change(request, portal_id, sub_id, cancel=True)


@post("/sandbox/portal/{portal_id:str}/subscriptions/{sub_id:str}/resume")
async def resume_from_portal(
    request: AnyRequest, portal_id: FromPath[str], sub_id: FromPath[str]
) -> Response[Any]:
    return _change(request, portal_id, sub_id, cancel=False)


portal_route_handlers = [show_portal, cancel_from_portal, resume_from_portal]
