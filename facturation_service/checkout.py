"""Embedded Checkout, the whole flow of ``POST /billing/checkout-sessions``: price the basket from
the catalog, make sure the user's Stripe customer exists (``customers.py``), open a Checkout
Session and remember it as a local order; and the return page's status.

Stripe is called with no database transaction open. ``Checkout`` is built once by the app.
"""

from __future__ import annotations

import time
import uuid
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import msgspec
from sqlalchemy import insert, or_, select

from facturation_service import fulfilment, subscription_slots
from facturation_service.catalog import Catalog, Product
from facturation_service.customers import Customers
from facturation_service.models import Order, OrderStatus, utcnow
from facturation_service.schemas import (
    MAX_LINES,
    MAX_QUANTITY,
    BasketItem,
    CheckoutResponse,
    CheckoutStatus,
    PricedLine,
)
from facturation_service.stripe_api import OpenedSession, StripeApi
from shared import ConflictError, Database, NotFoundError, UnprocessableError

if TYPE_CHECKING:
    from stripe.params.checkout import SessionCreateParams

__all__ = [
    "SESSION_ID_PLACEHOLDER",
    "SUBSCRIPTION_CHECKOUT_SECONDS",
    "Checkout",
    "PricedBasket",
    "allowed_return_url",
    "checkout_params",
    "checkout_return_url",
    "price_basket",
    "subscription_checkout_params",
    "subscription_plan",
]

SUBSCRIPTION_CHECKOUT_SECONDS = 1800 + 60
"""A subscription session's ``expires_at``: Stripe's minimum (30 min) plus a minute for clock
skew, so an abandoned one frees the user's slot soon."""


class Checkout:
    def __init__(
        self,
        database: Database,
        stripe: StripeApi,
        customers: Customers,
        catalog: Catalog,
        *,
        return_origins: list[str],
        default_return_path: str,
    ) -> None:
        self.database = database
        self.stripe = stripe
        self.customers = customers
        self.catalog = catalog
        self.return_origins = return_origins
        self.default_return_path = default_return_path

    def price(self, items: list[BasketItem]) -> PricedBasket:
        return price_basket(self.catalog, items)

    async def create_checkout_session(
        self, user_id: str, items: list[BasketItem], return_url: str | None
    ) -> CheckoutResponse:
        """Price, then the customer step, then the session; a free basket never reaches Stripe."""
        basket = price_basket(self.catalog, items)
        checked_return_url = checkout_return_url(
            return_url, self.return_origins, self.default_return_path
        )
        plan = subscription_plan(self.catalog, basket)
        if plan is not None:
            return await self._open_subscription_session(
                basket, plan, user_id=user_id, return_url=checked_return_url
            )
        if basket.is_free:
            return await self._complete_free_order(basket, user_id=user_id)
        customer = await self.customers.ensure_customer(user_id)
        return await self._open_checkout_session(
            basket,
            user_id=user_id,
            user_stripe_id=customer.user_stripe_id,
            return_url=checked_return_url,
        )

    async def _complete_free_order(self, basket: PricedBasket, *, user_id: str) -> CheckoutResponse:
        """Nothing to pay: the order is complete at once and Stripe is never called."""
        order_id = new_order_id()
        async with self.database.sessionmaker() as session, session.begin():
            await session.execute(
                _INSERT_ORDER,
                _order_values(basket, id=order_id, user_id=user_id, status=OrderStatus.COMPLETE),
            )
            # Free products are granted at once, in the transaction that creates the order.
            await fulfilment.fulfil(session, Order.id == order_id)
        return CheckoutResponse(
            id=order_id,
            client_secret=None,
            amount_total=0,
            currency=basket.currency,
            order_id=order_id,
            status=OrderStatus.COMPLETE,
        )

    async def _open_checkout_session(
        self, basket: PricedBasket, *, user_id: str, user_stripe_id: str, return_url: str
    ) -> CheckoutResponse:
        order_id = new_order_id()
        # The order row is written only once Stripe has answered, so a failure leaves nothing.
        session = await self.stripe.create_checkout_session(
            checkout_params(
                basket,
                user_id=user_id,
                user_stripe_id=user_stripe_id,
                order_id=order_id,
                return_url=return_url,
            ),
            idempotency_key=checkout_idempotency_key(order_id),
        )
        # One round trip, retried once on a connection a database restart dropped.
        await self.database.insert_row(
            _ORDERS,
            _pending_order(
                basket, session, order_id=order_id, user_id=user_id, user_stripe_id=user_stripe_id
            ),
        )
        return _pending_response(basket, session, order_id)

    async def _open_subscription_session(
        self, basket: PricedBasket, plan: Product, *, user_id: str, return_url: str
    ) -> CheckoutResponse:
        """Flow 8: the user's slot first (409 when taken), then the customer and the session;
        if anything fails the slot is given back, so nothing half-made stays."""
        order_id = new_order_id()
        await self._take_subscription_slot(user_id, order_id)
        try:
            customer = await self.customers.ensure_customer(user_id)
            expires_at = int(time.time()) + SUBSCRIPTION_CHECKOUT_SECONDS
            session = await self.stripe.create_subscription_checkout_session(
                subscription_checkout_params(
                    plan,
                    user_id=user_id,
                    user_stripe_id=customer.user_stripe_id,
                    order_id=order_id,
                    return_url=return_url,
                    expires_at=expires_at,
                ),
                idempotency_key=checkout_idempotency_key(order_id),
            )
            async with self.database.engine.begin() as connection:
                await connection.execute(
                    _INSERT_ORDER,
                    _pending_order(
                        basket,
                        session,
                        order_id=order_id,
                        user_id=user_id,
                        user_stripe_id=customer.user_stripe_id,
                        mode="subscription",
                    ),
                )
                await subscription_slots.bind_checkout(
                    connection, user_id, order_id, session.id, expires_at
                )
        except BaseException:
            await subscription_slots.release(self.database, user_id, order_id)
            raise
        return _pending_response(basket, session, order_id)

    async def _take_subscription_slot(self, user_id: str, order_id: str) -> None:
        """Take the user's one subscription slot, or take over an abandoned checkout's.

        Raises:
            ConflictError: a live subscription or an open subscription checkout holds it.
        """
        held = await subscription_slots.take(self.database, user_id, order_id)
        if held is None:
            return
        if held.subscription_id is not None:
            raise ConflictError("This user already has a subscription.")
        abandoned = held.abandoned_checkout(int(time.time()))
        if abandoned is not None:
            # Closed at Stripe first (one idempotent request, whoever asks), so it can never
            # be paid after its slot went to another checkout; then one conditional UPDATE.
            await self._expire_abandoned_session(abandoned)
        elif not held.stale:
            raise ConflictError("A subscription checkout is already open for this user.")
        if not await subscription_slots.take_over(self.database, user_id, held.holder, order_id):
            raise ConflictError("A subscription checkout is already open for this user.")

    async def _expire_abandoned_session(self, session_id: str) -> None:
        try:
            await self.stripe.expire_checkout_session(
                session_id, idempotency_key=f"checkout-expire:{session_id}"
            )
        except UnprocessableError:
            # Stripe refuses to expire a session that is not open: it may have expired on its
            # own (fine) or been paid (its subscription is on its way: the slot stays).
            found = await self.stripe.retrieve_checkout_session(session_id)
            if found.to_dict().get("status") != "expired":
                raise ConflictError(
                    "This user's last subscription checkout was paid; its subscription is "
                    "on its way."
                ) from None

    async def checkout_status(self, user_id: str, checkout_id: str) -> CheckoutStatus:
        """For the return page; someone else's session is indistinguishable from a missing one."""
        async with self.database.sessionmaker() as db:
            order = await db.scalar(
                select(Order).where(
                    Order.user_id == user_id,
                    or_(Order.stripe_checkout_session_id == checkout_id, Order.id == checkout_id),
                )
            )
        if order is None:
            raise NotFoundError("No checkout session with this id.")
        if order.stripe_checkout_session_id is None:
            return CheckoutStatus(
                status="complete",
                payment_status="no_payment_required",
                invoice_id=None,
                order_id=order.id,
                order_status=order.status,
            )
        session = (
            await self.stripe.retrieve_checkout_session(order.stripe_checkout_session_id)
        ).to_dict()
        invoice = session.get("invoice")
        if isinstance(invoice, dict):
            invoice = invoice.get("id")
        order_status: str | None = order.status
        # The return page runs the fulfil step itself, so it never waits for the webhook.
        if (
            session.get("status") == "complete"
            and session.get("payment_status") in fulfilment.PAID_PAYMENT_STATUSES
        ):
            payment_intent = session.get("payment_intent")
            if isinstance(payment_intent, dict):
                payment_intent = payment_intent.get("id")
            async with self.database.sessionmaker() as db, db.begin():
                await fulfilment.mark_paid_and_fulfil(
                    db,
                    Order.id == order.id,
                    payment_intent=payment_intent if isinstance(payment_intent, str) else None,
                )
                order_status = await db.scalar(select(Order.status).where(Order.id == order.id))
        return CheckoutStatus(
            status=session.get("status"),
            payment_status=session.get("payment_status"),
            invoice_id=invoice if isinstance(invoice, str) else order.stripe_invoice_id,
            order_id=order.id,
            order_status=order_status,
        )


# --- pricing ---


class PricedBasket(msgspec.Struct, frozen=True):
    lines: list[PricedLine]
    amount_total: int
    currency: str

    @property
    def is_free(self) -> bool:
        return self.amount_total == 0


def price_basket(catalog: Catalog, items: list[BasketItem]) -> PricedBasket:
    """Server-side prices: client-sent prices are never read, only ids and quantities.

    Raises UnprocessableError (422) for an empty basket, unknown products, bad quantities or
    mixed currencies; the same product listed twice is one line."""
    if not items:
        raise UnprocessableError("The basket is empty.")
    if len(items) > MAX_LINES:
        raise UnprocessableError(f"A basket holds at most {MAX_LINES} lines.")
    quantities: dict[str, int] = {}
    for item in items:
        if item.quantity <= 0:
            raise UnprocessableError(f"Quantity of {item.product_id!r} must be at least 1.")
        quantities[item.product_id] = quantities.get(item.product_id, 0) + item.quantity
    unknown = sorted(product_id for product_id in quantities if catalog.get(product_id) is None)
    if unknown:
        raise UnprocessableError(
            "Unknown products: " + ", ".join(unknown), extra={"unknown_products": unknown}
        )
    lines: list[PricedLine] = []
    for product_id, quantity in quantities.items():
        if quantity > MAX_QUANTITY:
            raise UnprocessableError(f"Quantity of {product_id!r} must be at most {MAX_QUANTITY}.")
        product = catalog.get(product_id)
        assert product is not None
        lines.append(
            PricedLine(
                product_id=product.id,
                name=product.name,
                quantity=quantity,
                unit_amount=product.unit_amount,
                amount=product.unit_amount * quantity,
                currency=product.currency,
            )
        )
    currencies = sorted({line.currency for line in lines})
    if len(currencies) > 1:
        raise UnprocessableError(
            "A basket must be in one currency; it mixes " + ", ".join(currencies) + "."
        )
    return PricedBasket(
        lines=lines, amount_total=sum(line.amount for line in lines), currency=currencies[0]
    )


# --- the return URL, the session's parameters and the order row ---

SESSION_ID_PLACEHOLDER = "{CHECKOUT_SESSION_ID}"
_DEFAULT_PORTS = {"http": 80, "https": 443}


def _origin(url: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) of an absolute http(s) URL without credentials, else None."""
    if any(char in url for char in "\\\t\r\n ") or not url.isprintable():
        return None
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname or "@" in parts.netloc:
        return None
    return scheme, parts.hostname.lower(), port or _DEFAULT_PORTS[scheme]


def allowed_return_url(requested: str | None, allowed_origins: list[str], default_path: str) -> str:
    """A URL to send a person back to (the customer portal's): allow-listed origins only."""
    if requested is None:
        if not allowed_origins:
            raise UnprocessableError("return_url is required: no default origin is configured.")
        return allowed_origins[0].rstrip("/") + default_path
    allowed = {origin for origin in map(_origin, allowed_origins) if origin is not None}
    if _origin(requested) not in allowed:
        raise UnprocessableError("return_url must be on one of this site's origins.")
    return requested


def checkout_return_url(
    requested: str | None, allowed_origins: list[str], default_path: str
) -> str:
    """The URL Stripe sends the buyer back to; only allow-listed origins (no open redirect)."""
    allowed = {origin for origin in map(_origin, allowed_origins) if origin is not None}
    if requested is None:
        if not allowed_origins:
            raise UnprocessableError("return_url is required: no default origin is configured.")
        return allowed_origins[0].rstrip("/") + default_path
    if SESSION_ID_PLACEHOLDER not in requested:
        raise UnprocessableError(f"return_url must contain {SESSION_ID_PLACEHOLDER}.")
    if _origin(requested) not in allowed:
        raise UnprocessableError("return_url must be on one of this site's origins.")
    return requested


def new_order_id() -> str:
    return f"ord_{uuid.uuid4().hex}"


def checkout_idempotency_key(order_id: str) -> str:
    return f"checkout-session:{order_id}"


def checkout_params(
    basket: PricedBasket, *, user_id: str, user_stripe_id: str, order_id: str, return_url: str
) -> SessionCreateParams:
    metadata = {"user_id": user_id, "order_id": order_id}
    return {
        "ui_mode": "embedded_page",
        "mode": "payment",
        "customer": user_stripe_id,
        "client_reference_id": order_id,
        "line_items": [
            {
                "quantity": line.quantity,
                "price_data": {
                    "currency": line.currency,
                    "unit_amount": line.unit_amount,
                    "product_data": {
                        "name": line.name,
                        "metadata": {"product_id": line.product_id},
                    },
                },
            }
            for line in basket.lines
        ],
        "invoice_creation": {"enabled": True, "invoice_data": {"metadata": metadata}},
        "return_url": return_url,
        "metadata": metadata,
    }


def subscription_plan(catalog: Catalog, basket: PricedBasket) -> Product | None:
    """The plan when the basket is a subscription: one recurring product, quantity 1, alone.

    Raises UnprocessableError (422) for a recurring product in any other basket."""
    products = [catalog.get(line.product_id) for line in basket.lines]
    plans = [product for product in products if product is not None and product.recurring]
    if not plans:
        return None
    if len(basket.lines) != 1:
        raise UnprocessableError(
            "A subscription plan is bought alone: one recurring product, nothing else.",
            extra={"recurring_products": [plan.id for plan in plans]},
        )
    if basket.lines[0].quantity != 1:
        raise UnprocessableError(f"Quantity of {plans[0].id!r} must be 1: it is a subscription.")
    return plans[0]


def subscription_checkout_params(
    plan: Product,
    *,
    user_id: str,
    user_stripe_id: str,
    order_id: str,
    return_url: str,
    expires_at: int,
) -> SessionCreateParams:
    """``mode=subscription``: no ``invoice_creation`` (Stripe invoices subscriptions itself);
    the subscription carries the user, order and plan in its own metadata."""
    assert plan.recurring is not None
    return {
        "ui_mode": "embedded_page",
        "mode": "subscription",
        "customer": user_stripe_id,
        "line_items": [
            {
                "quantity": 1,
                "price_data": {
                    "currency": plan.currency,
                    "unit_amount": plan.unit_amount,
                    "product_data": {"name": plan.name},
                    "recurring": {
                        "interval": plan.recurring.interval,
                        "interval_count": plan.recurring.interval_count,
                    },
                },
            }
        ],
        "subscription_data": {
            "metadata": {"user_id": user_id, "order_id": order_id, "product_id": plan.id}
        },
        "return_url": return_url,
        "metadata": {"user_id": user_id, "order_id": order_id},
        "expires_at": expires_at,
    }


_ORDERS = Order.metadata.tables[Order.__tablename__]
_INSERT_ORDER = insert(_ORDERS)


def _pending_order(
    basket: PricedBasket,
    session: OpenedSession,
    *,
    order_id: str,
    user_id: str,
    user_stripe_id: str,
    mode: str = "payment",
) -> dict[str, Any]:
    """The row of the order of a session Stripe has made, pending payment."""
    return _order_values(
        basket,
        id=order_id,
        user_id=user_id,
        user_stripe_id=user_stripe_id,
        stripe_checkout_session_id=session.id,
        status=OrderStatus.PENDING_PAYMENT,
        mode=mode,
    )


def _pending_response(
    basket: PricedBasket, session: OpenedSession, order_id: str
) -> CheckoutResponse:
    return CheckoutResponse(
        id=session.id,
        client_secret=session.client_secret,
        amount_total=basket.amount_total,
        currency=basket.currency,
        order_id=order_id,
        status=OrderStatus.PENDING_PAYMENT,
    )


def _order_values(basket: PricedBasket, **fields: Any) -> dict[str, Any]:
    now = utcnow()
    return {
        "amount_total": basket.amount_total,
        "currency": basket.currency,
        "user_stripe_id": None,
        "stripe_checkout_session_id": None,
        "stripe_invoice_id": None,
        "lines": [msgspec.structs.asdict(line) for line in basket.lines],
        "mode": "payment",
        "created_at": now,
        "updated_at": now,
        **fields,
    }
