"""Errors the services raise on purpose, each rendered as RFC 9457 problem+json.

ProblemError                      an HTTP problem: status, title, detail, type
├── ClientError                   4xx  the request is wrong; the same request fails again
│   ├── BadRequestError           400  malformed input the validator could not catch
│   ├── UnauthorizedError         401  no, bad or revoked credentials
│   ├── PaymentRequiredError      402  the card or payment was refused
│   ├── ForbiddenError            403  authenticated, but not allowed
│   ├── NotFoundError             404  absent, or someone else's
│   ├── RequestTimeoutError       408  the client did not send its request in time
│   ├── ConflictError             409  the request contradicts stored state
│   ├── ContentTooLargeError      413  the body is larger than accepted
│   ├── UnprocessableError        422  well-formed but semantically invalid
│   └── TooManyRequestsError      429  a rate limit was hit
└── ServerError                   5xx  we or a dependency failed; the same request may pass later
    ├── BadGatewayError           502  an upstream refused or answered garbage
    ├── ServiceUnavailableError   503  a dependency is down; fail closed
    └── GatewayTimeoutError       504  an upstream did not answer in time

Whoever retries (the webhook worker, a client) retries a ``ServerError`` and gives up on a
``ClientError``.

SettingsError                 start-up stops: a setting is missing or malformed
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "BadGatewayError",
    "BadRequestError",
    "ClientError",
    "ConflictError",
    "ContentTooLargeError",
    "ForbiddenError",
    "GatewayTimeoutError",
    "NotFoundError",
    "PaymentRequiredError",
    "ProblemError",
    "RequestTimeoutError",
    "ServerError",
    "ServiceUnavailableError",
    "SettingsError",
    "TooManyRequestsError",
    "UnauthorizedError",
    "UnprocessableError",
]


class ProblemError(Exception):
    """An error that becomes one problem+json response."""

    status: ClassVar[int] = 500
    title: ClassVar[str] = "Internal Server Error"

    def __init__(
        self,
        detail: str,
        *,
        type_: str = "about:blank",
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.type = type_
        self.headers = headers or {}
        self.extra = extra or {}


class ClientError(ProblemError):
    """4xx: retrying the same request cannot succeed."""

    status = 400
    title = "Bad Request"


class ServerError(ProblemError):
    """5xx: a failure on our side or a dependency's; the same request may succeed later."""

    status = 500
    title = "Internal Server Error"


class BadRequestError(ClientError):
    status = 400
    title = "Bad Request"


class UnauthorizedError(ClientError):
    status = 401
    title = "Unauthorized"


class PaymentRequiredError(ClientError):
    status = 402
    title = "Payment Required"


class ForbiddenError(ClientError):
    status = 403
    title = "Forbidden"


class NotFoundError(ClientError):
    status = 404
    title = "Not Found"


class RequestTimeoutError(ClientError):
    status = 408
    title = "Request Timeout"


class ConflictError(ClientError):
    status = 409
    title = "Conflict"


class ContentTooLargeError(ClientError):
    status = 413
    title = "Content Too Large"


class UnprocessableError(ClientError):
    status = 422
    title = "Unprocessable Content"


class TooManyRequestsError(ClientError):
    status = 429
    title = "Too Many Requests"


class BadGatewayError(ServerError):
    status = 502
    title = "Bad Gateway"


class ServiceUnavailableError(ServerError):
    status = 503
    title = "Service Unavailable"


class GatewayTimeoutError(ServerError):
    status = 504
    title = "Gateway Timeout"


class SettingsError(Exception):
    """A required setting is missing or malformed; the message names the variable."""
