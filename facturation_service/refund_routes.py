"""``POST /internal/v1/orders/{id}/refunds``: the operations route that refunds a paid order.

Internal credential only (the app-wide guard) and never in the gateway's route table. Like
Stripe's own API it needs an ``Idempotency-Key``: the same key and body is the same refund, the
same key with another body a 409.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Request, Response, post
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.params import PathParameter
from litestar.status_codes import HTTP_201_CREATED

from facturation_service.billing_mode import WRITES_TO_STRIPE
from facturation_service.refunds import RefundCreate, RefundResult, Refunds
from shared import BadRequestError

__all__ = ["IDEMPOTENCY_KEY_HEADER", "ROUTE_HANDLERS"]

IDEMPOTENCY_KEY_HEADER = "Idempotency-Key"
_MAX_KEY_LENGTH = 200


def _idempotency_key(request: Request[Any, Any, State]) -> str:
    key = request.headers.get(IDEMPOTENCY_KEY_HEADER, "")
    if not key or len(key) > _MAX_KEY_LENGTH or not key.isprintable():
        raise BadRequestError(
            f"The {IDEMPOTENCY_KEY_HEADER} header is required (1 to {_MAX_KEY_LENGTH} characters)."
        )
    return key


def _body(raw: bytes) -> RefundCreate:
    if not raw.strip():
        return RefundCreate()
    try:
        return msgspec.json.decode(raw, type=RefundCreate)
    except msgspec.DecodeError as exc:
        raise BadRequestError(f"The body is not a refund request: {exc}") from None


@post(
    "/internal/v1/orders/{order_id:str}/refunds",
    summary="Refund (part of) a paid order through Stripe",
    opt={WRITES_TO_STRIPE: True},
)
async def create_order_refund(
    order_id: Annotated[str, PathParameter(max_length=64)],
    request: Request[Any, Any, State],
    refunds: NamedDependency[Refunds],
) -> Response[RefundResult]:
    key = _idempotency_key(request)
    body = _body(await request.body())
    result, _created = await refunds.request(order_id=order_id, idempotency_key=key, body=body)
    # A replay answers what the first request answered (201 and the refund), as Stripe does.
    return Response(result, status_code=HTTP_201_CREATED)


ROUTE_HANDLERS = [create_order_refund]
