"""Errors the services raise on purpose, each rendered as RFC 9457 problem+json.

ProblemError                  an HTTP problem: status, title, detail, type
├── BadRequestError           400  malformed input the validator could not catch
├── UnauthorizedError         401  no, bad or revoked credentials
├── ForbiddenError            403  authenticated, but not allowed
├── NotFoundError             404  absent, or someone else's
├── ConflictError             409  the request contradicts stored state
├── UnprocessableError        422  well-formed but semantically invalid
├── TooManyRequestsError      429  a rate limit was hit
├── BadGatewayError           502  an upstream refused or answered garbage
├── ServiceUnavailableError   503  a dependency is down; fail closed
└── GatewayTimeoutError       504  an upstream did not answer in time

SettingsError                 start-up stops: a setting is missing or malformed
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "BadGatewayError",
    "BadRequestError",
    "ConflictError",
    "ForbiddenError",
    "GatewayTimeoutError",
    "NotFoundError",
    "ProblemError",
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


class BadRequestError(ProblemError):
    status = 400
    title = "Bad Request"


class UnauthorizedError(ProblemError):
    status = 401
    title = "Unauthorized"


class ForbiddenError(ProblemError):
    status = 403
    title = "Forbidden"


class NotFoundError(ProblemError):
    status = 404
    title = "Not Found"


class ConflictError(ProblemError):
    status = 409
    title = "Conflict"


class UnprocessableError(ProblemError):
    status = 422
    title = "Unprocessable Content"


class TooManyRequestsError(ProblemError):
    status = 429
    title = "Too Many Requests"


class BadGatewayError(ProblemError):
    status = 502
    title = "Bad Gateway"


class ServiceUnavailableError(ProblemError):
    status = 503
    title = "Service Unavailable"


class GatewayTimeoutError(ProblemError):
    status = 504
    title = "Gateway Timeout"


class SettingsError(Exception):
    """A required setting is missing or malformed; the message names the variable."""
