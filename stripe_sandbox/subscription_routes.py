"""Stripe's subscription and billing portal endpoints, and the test controls that drive
subscriptions: the sandbox clock and the card a customer's renewals charge."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, delete, get, post
from litestar.params import FromPath
from stripe.params import SubscriptionRetrieveParams
from stripe.params.billing_portal import SessionCreateParams as PortalSessionCreateParams

from stripe_sandbox import checkout, subscriptions
from stripe_sandbox.api import error_response, json_response, run_api_call, sandbox_state
from stripe_sandbox.cards import check_number
from stripe_sandbox.customers import retrieve_customer
from stripe_sandbox.errors import StripeApiError, invalid_request
from stripe_sandbox.events import emit_events, emit_for_request
from stripe_sandbox.forms import Params, read_str, reject_unknown
from stripe_sandbox.objects import Obj, list_object, new_id
from stripe_sandbox.sandbox_routes import body_of, public_url
from stripe_sandbox.settings import SandboxSettings
from stripe_sandbox.subscription_objects import portal_session

__all__ = ["account_of", "subscription_route_handlers"]

AnyRequest = Request[Any, Any, Any]
_MAX_ADVANCE_SECONDS = 10 * 366 * 86400


def account_of(request: AnyRequest) -> subscriptions.Account:
    settings: SandboxSettings = request.app.state.settings
    return subscriptions.Account(
        public_url(request), settings.sandbox_account_country, settings.sandbox_account_name
    )


@get("/v1/subscriptions")
async def list_subscriptions(request: AnyRequest) -> Response[bytes]:
    def action(params: Params, _: str) -> tuple[int, Obj]:
        found, has_more = subscriptions.list_subscriptions(sandbox_state(request), params)
        return 200, list_object(found, "/v1/subscriptions", has_more=has_more)

    return await run_api_call(request, action)


@get("/v1/subscriptions/{subscription_id:str}")
async def retrieve_subscription(
    request: AnyRequest, subscription_id: FromPath[str]
) -> Response[bytes]:
    def action(params: Params, _: str) -> tuple[int, Obj]:
        reject_unknown(params, SubscriptionRetrieveParams)
        return 200, subscriptions.retrieve_subscription(sandbox_state(request), subscription_id)

    return await run_api_call(request, action)


@post("/v1/subscriptions/{subscription_id:str}")
async def update_subscription(
    request: AnyRequest, subscription_id: FromPath[str]
) -> Response[bytes]:
    def action(params: Params, request_id: str) -> tuple[int, Obj]:
        state = sandbox_state(request)
        sub, events = subscriptions.update_subscription(
            state, subscription_id, params, now=state.now()
        )
        emit_for_request(request, events, request_id)
        return 200, sub

    return await run_api_call(request, action)


@delete("/v1/subscriptions/{subscription_id:str}", status_code=200)
async def cancel_subscription(
    request: AnyRequest, subscription_id: FromPath[str]
) -> Response[bytes]:
    def action(params: Params, request_id: str) -> tuple[int, Obj]:
        state = sandbox_state(request)
        sub, events = subscriptions.cancel_subscription(
            state, subscription_id, params, now=state.now()
        )
        emit_for_request(request, events, request_id)
        return 200, sub

    return await run_api_call(request, action)


@post("/v1/billing_portal/sessions")
async def create_portal_session(request: AnyRequest) -> Response[bytes]:
    def action(params: Params, _: str) -> tuple[int, Obj]:
        reject_unknown(params, PortalSessionCreateParams)
        state = sandbox_state(request)
        customer_id = read_str(params, "customer", required=True)
        assert customer_id is not None
        retrieve_customer(state, customer_id)
        return_url = read_str(params, "return_url")
        if return_url is not None and not return_url.startswith(("http://", "https://")):
            raise invalid_request(
                f"Not a valid URL: {return_url}", param="return_url", code="url_invalid"
            )
        made = portal_session(
            customer_id=customer_id,
            return_url=return_url,
            created=state.now(),
            base=public_url(request),
        )
        state.portal_sessions[made["id"]] = made
        return 200, made

    return await run_api_call(request, action)


@get("/sandbox/clock")
async def read_clock(request: AnyRequest) -> dict[str, int]:
    return {"now": sandbox_state(request).now()}


@post("/sandbox/clock/advance", status_code=200)
async def advance_clock(request: AnyRequest) -> Response[bytes]:
    """``{seconds}``: the clock moves on; subscriptions renew or end as their periods pass, and
    open Checkout Sessions past their ``expires_at`` expire; the events go out in time order."""
    request_id = new_id("req_", 14)
    try:
        body = await body_of(request)
        raw = body.get("seconds")
        try:
            seconds = int(str(raw))
        except ValueError:
            raise invalid_request("seconds must be an integer", param="seconds") from None
        if not 0 <= seconds <= _MAX_ADVANCE_SECONDS:
            raise invalid_request(
                f"seconds must be between 0 and {_MAX_ADVANCE_SECONDS}", param="seconds"
            )
    except StripeApiError as error:
        return error_response(error, request_id)
    state = sandbox_state(request)
    result = subscriptions.advance_clock(state, seconds, account=account_of(request))
    expired = checkout.expire_due_sessions(state, now=result.now)
    steps = [*result.steps, *((at, [("checkout.session.expired", obj)]) for at, obj in expired)]
    for at, events in sorted(steps, key=lambda step: step[0]):
        emit_events(request.app, events, request_id=None, idempotency_key=None, at=at)
    answer = {
        "now": result.now,
        "renewed": result.renewed,
        "ended": result.ended,
        "failed": result.failed,
        "expired_sessions": [obj["id"] for _, obj in expired],
    }
    return json_response(200, answer, request_id)


@post("/sandbox/customers/{customer_id:str}/card", status_code=200)
async def attach_card(request: AnyRequest, customer_id: FromPath[str]) -> Response[bytes]:
    """``{card_number}``: the card the customer's later renewals charge."""
    request_id = new_id("req_", 14)
    state = sandbox_state(request)
    try:
        body = await body_of(request)
        retrieve_customer(state, customer_id)
        number = body.get("card_number")
        if not isinstance(number, str) or not number:
            raise invalid_request(
                "Missing required param: card_number.",
                param="card_number",
                code="parameter_missing",
            )
        try:
            digits = check_number(number)
        except StripeApiError as error:
            raise invalid_request(error.message, param="card_number", code=error.code) from None
    except StripeApiError as error:
        return error_response(error, request_id)
    state.customer_cards[customer_id] = digits
    return json_response(200, {"customer": customer_id, "card_last4": digits[-4:]}, request_id)


subscription_route_handlers = [
    list_subscriptions,
    retrieve_subscription,
    update_subscription,
    cancel_subscription,
    create_portal_session,
    read_clock,
    advance_clock,
    attach_card,
]
