"""Stripe's refund and charge endpoints (``/v1/refunds``, ``/v1/charges/{id}``) and the dispute
test control ``POST /sandbox/charges/{id}/dispute {outcome}``."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get, post
from litestar.params import FromPath
from stripe.params import RefundCreateParams

from stripe_sandbox import payments
from stripe_sandbox.api import error_response, json_response, run_api_call, sandbox_state
from stripe_sandbox.errors import StripeApiError, invalid_request, resource_missing
from stripe_sandbox.events import emit_events, emit_for_request
from stripe_sandbox.forms import Params, read_int, read_metadata, read_str, reject_unknown
from stripe_sandbox.objects import Obj, list_object, new_id

__all__ = ["payment_route_handlers"]

AnyRequest = Request[Any, Any, Any]
_REASONS = ("duplicate", "fraudulent", "requested_by_customer")


@post("/v1/refunds")
async def create_refund(request: AnyRequest) -> Response[bytes]:
    def action(params: Params, request_id: str) -> tuple[int, Obj]:
        reject_unknown(params, RefundCreateParams)
        reason = read_str(params, "reason")
        if reason is not None and reason not in _REASONS:
            raise invalid_request(
                f"Invalid reason: must be one of {', '.join(_REASONS)}", param="reason"
            )
        made, events = payments.create_refund(
            sandbox_state(request),
            charge_id=read_str(params, "charge"),
            intent_id=read_str(params, "payment_intent"),
            amount=read_int(params, "amount"),
            reason=reason,
            metadata=read_metadata(params),
            now=sandbox_state(request).now(),
        )
        emit_for_request(request, events, request_id)
        return 200, made

    return await run_api_call(request, action)


@get("/v1/refunds")
async def list_refunds(request: AnyRequest) -> Response[bytes]:
    def action(params: Params, _: str) -> tuple[int, Obj]:
        charge_id = read_str(params, "charge")
        intent_id = read_str(params, "payment_intent")
        limit = read_int(params, "limit", minimum=1, maximum=100) or 10
        found = [
            refund
            for refund in reversed(sandbox_state(request).refunds.values())
            if (charge_id is None or refund["charge"] == charge_id)
            and (intent_id is None or refund["payment_intent"] == intent_id)
        ]
        return 200, list_object(found[:limit], "/v1/refunds", has_more=len(found) > limit)

    return await run_api_call(request, action)


@get("/v1/refunds/{refund_id:str}")
async def retrieve_refund(request: AnyRequest, refund_id: FromPath[str]) -> Response[bytes]:
    def action(params: Params, _: str) -> tuple[int, Obj]:
        found = sandbox_state(request).refunds.get(refund_id)
        if found is None:
            raise resource_missing("refund", refund_id)
        return 200, found

    return await run_api_call(request, action)


@get("/v1/charges/{charge_id:str}")
async def retrieve_charge(request: AnyRequest, charge_id: FromPath[str]) -> Response[bytes]:
    def action(params: Params, _: str) -> tuple[int, Obj]:
        found = sandbox_state(request).charges.get(charge_id)
        if found is None:
            raise resource_missing("charge", charge_id)
        return 200, found

    return await run_api_call(request, action)


@post("/sandbox/charges/{charge_id:str}/dispute")
async def dispute_charge(request: AnyRequest, charge_id: FromPath[str]) -> Response[bytes]:
    """Open a dispute on the charge and close it with ``outcome`` (``won`` or ``lost``): the
    ``charge.dispute.created`` and ``charge.dispute.closed`` events, in that order."""
    request_id = new_id("req_", 14)
    try:
        raw = await request.body()
        body = await request.json() if raw else {}
        outcome = body.get("outcome") if isinstance(body, dict) else None
        disputed, events = payments.open_and_close_dispute(
            sandbox_state(request),
            charge_id,
            outcome=str(outcome),
            now=sandbox_state(request).now(),
        )
    except StripeApiError as error:
        return error_response(error, request_id)
    except ValueError:
        return error_response(invalid_request("The request body is not valid JSON."), request_id)
    emit_events(request.app, events, request_id=request_id, idempotency_key=None)
    return json_response(200, disputed, request_id)


payment_route_handlers = [
    create_refund,
    list_refunds,
    retrieve_refund,
    retrieve_charge,
    dispute_charge,
]
