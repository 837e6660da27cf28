"""``GET /billing/orders``, ``GET /billing/orders/{id}`` and ``GET /billing/entitlements``: the
signed-in user's orders (newest first, paginated like invoices) and what they may use now.
Someone else's order is a 404, never a 403."""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import msgspec
from litestar import get
from litestar.di import NamedDependency, Provide
from litestar.params import PathParameter, QueryParameter
from sqlalchemy import select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from facturation_service import entitlements
from facturation_service.entitlements import EntitlementView
from facturation_service.models import Order
from shared import BadRequestError, Identity, NotFoundError, provide_identity

__all__ = ["ROUTE_HANDLERS", "EntitlementList", "OrderPage", "OrderView"]

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100


class OrderView(msgspec.Struct):
    id: str
    status: str
    amount_total: int
    amount_refunded: int
    currency: str
    lines: list[dict[str, Any]]
    checkout_session_id: str | None
    invoice_id: str | None
    created_at: datetime

    @classmethod
    def of(cls, order: Order) -> OrderView:
        return cls(
            id=order.id,
            status=order.status,
            amount_total=order.amount_total,
            amount_refunded=order.amount_refunded,
            currency=order.currency,
            lines=order.lines,
            checkout_session_id=order.stripe_checkout_session_id,
            invoice_id=order.stripe_invoice_id,
            created_at=_aware(order.created_at),
        )


class OrderPage(msgspec.Struct):
    data: list[OrderView]
    has_more: bool
    next_cursor: str | None
    """Pass as ``cursor`` to get the next page; ``None`` on the last page."""


class EntitlementList(msgspec.Struct):
    data: list[EntitlementView]


def _aware(value: datetime) -> datetime:
    # SQLite hands back naive datetimes; they were stored in UTC.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def encode_cursor(order: Order) -> str:
    return base64.urlsafe_b64encode(f"{order.created_at.isoformat()}|{order.id}".encode()).decode()


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        created, _, order_id = base64.urlsafe_b64decode(cursor.encode()).decode().partition("|")
        if not order_id:
            raise ValueError(cursor)
        return datetime.fromisoformat(created), order_id
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise BadRequestError("The cursor is not one this API returned.") from None


async def list_user_orders(
    session: AsyncSession, user_id: str, *, limit: int, cursor: str | None
) -> OrderPage:
    """Newest first, by creation time then id (a stable order for the cursor)."""
    query = select(Order).where(Order.user_id == user_id)
    if cursor:
        created_at, order_id = decode_cursor(cursor)
        query = query.where(tuple_(Order.created_at, Order.id) < tuple_(created_at, order_id))
    query = query.order_by(Order.created_at.desc(), Order.id.desc()).limit(limit + 1)
    found = list((await session.scalars(query)).all())
    has_more = len(found) > limit
    found = found[:limit]
    return OrderPage(
        data=[OrderView.of(order) for order in found],
        has_more=has_more,
        next_cursor=encode_cursor(found[-1]) if has_more else None,
    )


_with_user = {"identity": Provide(provide_identity)}


@get("/billing/orders", dependencies=_with_user)
async def list_orders(
    identity: NamedDependency[Identity],
    db_session: NamedDependency[AsyncSession],
    limit: Annotated[int, QueryParameter(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE,
    cursor: Annotated[str | None, QueryParameter(max_length=600)] = None,
) -> OrderPage:
    return await list_user_orders(db_session, identity.user_id, limit=limit, cursor=cursor)


@get("/billing/orders/{order_id:str}", dependencies=_with_user)
async def get_order(
    order_id: Annotated[str, PathParameter(max_length=64)],
    identity: NamedDependency[Identity],
    db_session: NamedDependency[AsyncSession],
) -> OrderView:
    order = await db_session.scalar(
        select(Order).where(Order.id == order_id, Order.user_id == identity.user_id)
    )
    if order is None:
        raise NotFoundError(f"No order {order_id} for this user.")
    return OrderView.of(order)


@get("/billing/entitlements", dependencies=_with_user)
async def list_entitlements(
    identity: NamedDependency[Identity],
    db_session: NamedDependency[AsyncSession],
    status: Annotated[Literal["all"] | None, QueryParameter()] = None,
) -> EntitlementList:
    found = await entitlements.list_user_entitlements(
        db_session, identity.user_id, every=status == "all"
    )
    return EntitlementList(data=found)


ROUTE_HANDLERS = [list_orders, get_order, list_entitlements]
