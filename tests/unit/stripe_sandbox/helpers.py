from __future__ import annotations

from typing import Any

import httpx
import stripe

RETURN_URL = "http://localhost:8000/?session_id={CHECKOUT_SESSION_ID}"


async def create_customer(client: stripe.StripeClient, user_id: str = "user-1") -> stripe.Customer:
    return await client.v1.customers.create_async(
        params={"email": f"{user_id}@example.com", "name": "Ada", "metadata": {"user_id": user_id}}
    )


async def create_session(
    client: stripe.StripeClient, customer_id: str, **extra: Any
) -> stripe.checkout.Session:
    params: dict[str, Any] = {
        "ui_mode": "embedded_page",
        "mode": "payment",
        "customer": customer_id,
        "return_url": RETURN_URL,
        "invoice_creation": {"enabled": True, "invoice_data": {"metadata": {"order_id": "o-1"}}},
        "line_items": [
            {
                "quantity": 2,
                "price_data": {
                    "currency": "eur",
                    "unit_amount": 1250,
                    "product_data": {"name": "Field guide"},
                },
            },
            {
                "quantity": 1,
                "price_data": {
                    "currency": "eur",
                    "unit_amount": 500,
                    "product_data": {"name": "Sticker"},
                },
            },
        ],
        "metadata": {"user_id": "user-1", "order_id": "o-1"},
        **extra,
    }
    return await client.v1.checkout.sessions.create_async(params=params)  # type: ignore[arg-type]


async def pay(
    sandbox_url: str, session: stripe.checkout.Session, card: str = "4242424242424242"
) -> httpx.Response:
    async with httpx.AsyncClient() as http:
        return await http.post(
            f"{sandbox_url}/sandbox/checkout/sessions/{session.id}/complete",
            json={
                "client_secret": session.client_secret,
                "card_number": card,
                "exp_month": 12,
                "exp_year": 2034,
                "cvc": "123",
            },
        )


async def create_subscription_session(
    client: stripe.StripeClient,
    customer_id: str,
    *,
    interval: str = "month",
    interval_count: int = 1,
    **extra: Any,
) -> stripe.checkout.Session:
    """As the facturation service creates one (SUBSCRIPTIONS_CONTRACT.md, request 1)."""
    params: dict[str, Any] = {
        "ui_mode": "embedded_page",
        "mode": "subscription",
        "customer": customer_id,
        "return_url": RETURN_URL,
        "line_items": [
            {
                "quantity": 1,
                "price_data": {
                    "currency": "eur",
                    "unit_amount": 990,
                    "product_data": {"name": "Pro plan"},
                    "recurring": {"interval": interval, "interval_count": interval_count},
                },
            }
        ],
        "metadata": {"user_id": "user-1", "order_id": "o-9"},
        "subscription_data": {
            "metadata": {"user_id": "user-1", "order_id": "o-9", "product_id": "pro"}
        },
        **extra,
    }
    return await client.v1.checkout.sessions.create_async(params=params)  # type: ignore[arg-type]
