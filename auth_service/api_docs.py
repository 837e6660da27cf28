"""What ``/schema/openapi.json`` must say beyond what Litestar sees: the problems each route
raises on purpose and the routes that read a bearer token or the gateway's identity."""

from __future__ import annotations

from shared import ApiDocs

__all__ = ["API_DOCS"]

API_DOCS = ApiDocs(
    problems={
        "POST /auth/register": (409, 422, 429, 503),
        "POST /auth/login": (401, 429, 503),
        "POST /auth/logout": (401, 503),
        "GET /users/me": (401, 404),
        "GET /internal/v1/tokens/check": (401, 503),
        "GET /internal/v1/users/{user_id}": (404,),
        "PUT /internal/v1/users/{user_id}/stripe-customer": (404, 409, 422),
    },
    bearer=("POST /auth/logout", "GET /internal/v1/tokens/check"),
    identity=("GET /users/me",),
)
