"""Stripe's error bodies, status codes and the exception that carries them.

::

    StripeApiError                 {"error": {"type", "code", "message", "param", ...}}
    ├── invalid_request_error      400 bad or missing parameter · 404 no such object
    │                              · 401 bad API key · 429 code rate_limit (scripted fault)
    ├── idempotency_error          400 a key reused with other parameters or endpoint
    ├── card_error                 402 declined, bad number, expiry or CVC
    └── api_error                  500 injected failures (SANDBOX_FAILURE_RATE, scripted faults)
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "StripeApiError",
    "api_error",
    "card_error",
    "idempotency_error",
    "invalid_request",
    "resource_missing",
]


class StripeApiError(Exception):
    def __init__(
        self,
        status: int,
        type_: str,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.type = type_
        self.message = message
        self.code = code
        self.param = param
        self.extra = extra or {}

    def body(self, request_log_url: str | None = None) -> dict[str, Any]:
        error: dict[str, Any] = {"type": self.type, "message": self.message}
        if self.code is not None:
            error["code"] = self.code
            error["doc_url"] = f"https://docs.stripe.com/error-codes/{self.code.replace('_', '-')}"
        if self.param is not None:
            error["param"] = self.param
        error.update(self.extra)
        if request_log_url is not None:
            error["request_log_url"] = request_log_url
        return {"error": error}


def invalid_request(
    message: str, *, param: str | None = None, code: str | None = None, status: int = 400
) -> StripeApiError:
    return StripeApiError(status, "invalid_request_error", message, code=code, param=param)


def resource_missing(kind: str, object_id: str, *, param: str = "id") -> StripeApiError:
    return invalid_request(
        f"No such {kind}: '{object_id}'", param=param, code="resource_missing", status=404
    )


def idempotency_error(message: str) -> StripeApiError:
    return StripeApiError(400, "idempotency_error", message)


def card_error(
    message: str, *, code: str, param: str | None = None, decline_code: str | None = None
) -> StripeApiError:
    extra = {"decline_code": decline_code} if decline_code else {}
    return StripeApiError(402, "card_error", message, code=code, param=param, extra=extra)


def api_error(
    message: str = "An unknown error occurred (sandbox failure injection).",
) -> StripeApiError:
    return StripeApiError(500, "api_error", message)
