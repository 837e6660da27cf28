"""What ``/schema/openapi.json`` must say beyond what Litestar sees: the problems each route
raises on purpose, the routes that need the gateway's identity, and the webhook's raw body."""

from __future__ import annotations

from shared import MAX_RELAYED_DELIVERIES, RELAY_MEDIA_TYPE, RELAY_PATH, ApiDocs

__all__ = ["API_DOCS"]

_AUTH = (404, 409, 502, 503, 504)
"""A call to auth: the user is gone, holds another customer, or auth is down."""
_STRIPE = (402, 409, 422, 502, 503, 504)
"""A call to Stripe, through ``stripe_api``'s one error mapping."""

_USER_ROUTES = {
    "POST /basket/validate": (422, *_AUTH),
    "POST /billing/customer": (*_AUTH, *_STRIPE),
    "PUT /users/me/stripe-customer": (409, 422, *_AUTH),
    "POST /billing/checkout-sessions": (*_AUTH, *_STRIPE),
    "GET /billing/checkout-sessions/{checkout_id}": (404, *_STRIPE),
    "GET /billing/invoices": (400,),
    "GET /billing/invoices/{invoice_id}": (404,),
    "GET /billing/invoices/{invoice_id}/pdf": (404, 409, 500),
    "GET /billing/orders": (400,),
    "GET /billing/orders/{order_id}": (404,),
    "GET /billing/entitlements": (400,),
    "GET /billing/subscriptions": (),
    "POST /billing/subscriptions/{subscription_id}/cancel": (400, 404, 409, *_STRIPE),
    "POST /billing/subscriptions/{subscription_id}/resume": (404, 409, *_STRIPE),
    "POST /billing/portal-sessions": (400, 409, 422, *_STRIPE),
}

API_DOCS = ApiDocs(
    problems={
        **_USER_ROUTES,
        "POST /webhooks/stripe": (400, 413, 503),
        f"POST {RELAY_PATH}": (400, 413),
        "POST /internal/v1/webhook-events/{event_id}/replay": (404, 409),
        "POST /internal/v1/orders/{order_id}/refunds": (400, 404, 409, 422, *_STRIPE),
        "POST /internal/v1/catch-up": (409, 422, 502, 503, 504),
        "POST /internal/v1/reconciliation": (409, 503),
    },
    identity=tuple(_USER_ROUTES),
    also_succeeds={
        "POST /billing/customer": {200: "The user already had a Stripe customer."},
        "GET /billing/invoices/{invoice_id}/pdf": {
            304: "If-None-Match named this state's document: the client holds it already."
        },
    },
    operations={
        f"POST {RELAY_PATH}": {
            "description": "The gateway's: Stripe deliveries that arrived together, each with "
            "the headers and the body it would have been forwarded with (at most "
            f"{MAX_RELAYED_DELIVERIES}), answered one by one in the same order as facturation "
            "would have answered each alone (`shared/_relay.py`). A request that does not "
            "read as the gateway's (no Content-Length, a form, a body over the limit) is "
            "refused and stores nothing.",
            "requestBody": {
                "required": True,
                "content": {RELAY_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}}},
            },
            "responses": {
                "200": {
                    "description": "Each delivery's status, headers and body, in order.",
                    "content": {
                        RELAY_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}}
                    },
                }
            },
        },
        "POST /webhooks/stripe": {
            "description": "The body is Stripe's event, verified byte for byte against "
            "Stripe-Signature before it is parsed.",
            "parameters": [
                {
                    "name": "Stripe-Signature",
                    "in": "header",
                    "required": True,
                    "schema": {"type": "string", "maxLength": 4096},
                }
            ],
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["id", "type", "created", "data"],
                            "properties": {
                                "id": {"type": "string", "minLength": 1, "maxLength": 255},
                                "type": {"type": "string", "minLength": 1, "maxLength": 128},
                                "created": {
                                    "type": "integer",
                                    "minimum": 0,
                                    "maximum": 2**63 - 1,
                                },
                                "data": {"type": "object"},
                            },
                        }
                    }
                },
            },
        },
    },
)
