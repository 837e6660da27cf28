"""Stripe's /v1 API: the endpoints this system calls, in Stripe's wire format."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get, post
from litestar.params import FromPath

from stripe_sandbox import checkout, customers, event_list, invoices
from stripe_sandbox.api import run_api_call, sandbox_state
from stripe_sandbox.errors import invalid_request, resource_missing
from stripe_sandbox.events import emit_for_request
from stripe_sandbox.forms import Params
from stripe_sandbox.objects import Obj, list_object

__all__ = ["api_route_handlers"]

AnyRequest = Request[Any, Any, Any]


def _no_params(params: Params) -> None:
    for name in params:
        raise invalid_request(
            f"Received unknown parameter: {name}", param=name, code="parameter_unknown"
        )


@post("/v1/customers")
async def create_customer(request: AnyRequest) -> Response[bytes]:
    state = sandbox_state(request)
    return await run_api_call(
        request,
        lambda params, _: (
            200,
            customers.create_customer(state, params, now=sandbox_state(request).now()),
        ),
    )


@get("/v1/customers")
async def list_customers(request: AnyRequest) -> Response[bytes]:
    def action(params: Params, _: str) -> tuple[int, Obj]:
        found, has_more = customers.list_customers(sandbox_state(request), params)
        return 200, list_object(found, "/v1/customers", has_more=has_more)

    return await run_api_call(request, action)


@get("/v1/customers/{customer_id:str}")
async def retrieve_customer(request: AnyRequest, customer_id: FromPath[str]) -> Response[bytes]:
    def action(params: Params, _: str) -> tuple[int, Obj]:
        _no_params(params)
        return 200, customers.retrieve_customer(sandbox_state(request), customer_id)

    return await run_api_call(request, action)


@post("/v1/customers/{customer_id:str}")
async def update_customer(request: AnyRequest, customer_id: FromPath[str]) -> Response[bytes]:
    return await run_api_call(
        request,
        lambda params, _: (
            200,
            customers.update_customer(sandbox_state(request), customer_id, params),
        ),
    )


@post("/v1/checkout/sessions")
async def create_checkout_session(request: AnyRequest) -> Response[bytes]:
    state = sandbox_state(request)
    return await run_api_call(
        request,
        lambda params, _: (
            200,
            checkout.create_checkout_session(state, params, now=sandbox_state(request).now()),
        ),
    )


@get("/v1/checkout/sessions/{session_id:str}")
async def retrieve_checkout_session(
    request: AnyRequest, session_id: FromPath[str]
) -> Response[bytes]:
    def action(params: Params, _: str) -> tuple[int, Obj]:
        _no_params(params)
        return 200, checkout.retrieve_checkout_session(sandbox_state(request), session_id)

    return await run_api_call(request, action)


@get("/v1/checkout/sessions/{session_id:str}/line_items")
async def list_checkout_line_items(
    request: AnyRequest, session_id: FromPath[str]
) -> Response[bytes]:
    def action(params: Params, _: str) -> tuple[int, Obj]:
        state = sandbox_state(request)
        checkout.retrieve_checkout_session(state, session_id)
        url = f"/v1/checkout/sessions/{session_id}/line_items"
        return 200, list_object(state.checkout_line_items[session_id], url)

    return await run_api_call(request, action)


@post("/v1/checkout/sessions/{session_id:str}/expire")
async def expire_checkout_session(
    request: AnyRequest, session_id: FromPath[str]
) -> Response[bytes]:
    def action(params: Params, request_id: str) -> tuple[int, Obj]:
        _no_params(params)
        session = checkout.expire_checkout_session(sandbox_state(request), session_id)
        emit_for_request(request, [("checkout.session.expired", session)], request_id)
        return 200, session

    return await run_api_call(request, action)


@get("/v1/invoices")
async def list_invoices(request: AnyRequest) -> Response[bytes]:
    def action(params: Params, _: str) -> tuple[int, Obj]:
        found, has_more = invoices.list_invoices(sandbox_state(request), params)
        return 200, list_object(found, "/v1/invoices", has_more=has_more)

    return await run_api_call(request, action)


@get("/v1/invoices/{invoice_id:str}")
async def retrieve_invoice(request: AnyRequest, invoice_id: FromPath[str]) -> Response[bytes]:
    def action(params: Params, _: str) -> tuple[int, Obj]:
        _no_params(params)
        return 200, invoices.retrieve_invoice(sandbox_state(request), invoice_id)

    return await run_api_call(request, action)


@get("/v1/payment_intents/{intent_id:str}")
async def retrieve_payment_intent(request: AnyRequest, intent_id: FromPath[str]) -> Response[bytes]:
    def action(params: Params, _: str) -> tuple[int, Obj]:
        _no_params(params)
        intent = sandbox_state(request).payment_intents.get(intent_id)
        if intent is None:
            raise resource_missing("payment_intent", intent_id)
        return 200, intent

    return await run_api_call(request, action)


@get("/v1/events")
async def list_events(request: AnyRequest) -> Response[bytes]:
    def action(params: Params, _: str) -> tuple[int, Obj]:
        found, has_more = event_list.list_events(sandbox_state(request), params)
        return 200, list_object(found, "/v1/events", has_more=has_more)

    return await run_api_call(request, action)


@get("/v1/events/{event_id:str}")
async def retrieve_event(request: AnyRequest, event_id: FromPath[str]) -> Response[bytes]:
    def action(params: Params, _: str) -> tuple[int, Obj]:
        _no_params(params)
        event = sandbox_state(request).events.get(event_id)
        if event is None:
            raise resource_missing("event", event_id)
        return 200, event

    return await run_api_call(request, action)


api_route_handlers = [
    create_customer,
    list_customers,
    retrieve_customer,
    update_customer,
    create_checkout_session,
    retrieve_checkout_session,
    list_checkout_line_items,
    expire_checkout_session,
    list_invoices,
    retrieve_invoice,
    retrieve_payment_intent,
    list_events,
    retrieve_event,
]
