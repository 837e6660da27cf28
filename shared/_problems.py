"""Every 4xx and 5xx leaves as ``application/problem+json`` (RFC 9457) with the request id."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR, HTTP_503_SERVICE_UNAVAILABLE

from shared._database import is_lost_connection
from shared._exceptions import ProblemError
from shared._request_id import REQUEST_ID_HEADER, current_request_id

if TYPE_CHECKING:
    from litestar.types import Receive, Scope, Send

__all__ = [
    "PROBLEM_MEDIA_TYPE",
    "exception_handlers",
    "problem_document",
    "problem_response",
    "send_problem",
]

PROBLEM_MEDIA_TYPE = "application/problem+json"
logger = logging.getLogger("shared.problems")


def problem_document(
    status: int,
    title: str,
    detail: str,
    *,
    type_: str = "about:blank",
    instance: str | None = None,
    request_id: str | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The body of a problem+json answer."""
    body: dict[str, Any] = {"type": type_, "title": title, "status": status, "detail": detail}
    if instance:
        body["instance"] = instance
    if request_id:
        body["request_id"] = request_id
    if extra:
        body.update(extra)
    return body


def problem_response(
    status: int,
    title: str,
    detail: str,
    *,
    type_: str = "about:blank",
    instance: str | None = None,
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> Response[dict[str, Any]]:
    request_id = current_request_id()
    body = problem_document(
        status, title, detail, type_=type_, instance=instance, request_id=request_id, extra=extra
    )
    response_headers = dict(headers or {})
    if request_id:
        response_headers[REQUEST_ID_HEADER] = request_id
    return Response(
        content=body, status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=response_headers
    )


def _problem_error(request: Request[Any, Any, Any], exc: ProblemError) -> Response[Any]:
    return problem_response(
        exc.status,
        exc.title,
        exc.detail,
        type_=exc.type,
        instance=request.url.path,
        headers=exc.headers,
        extra=exc.extra,
    )


def _http_exception(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    status = exc.status_code
    title = _TITLES.get(status, "Error")
    detail = exc.detail if exc.detail and exc.detail != title else _DETAILS.get(status, title)
    extra: dict[str, Any] = {}
    if isinstance(exc, ValidationException) and exc.extra:
        extra["errors"] = exc.extra
    headers = dict(exc.headers or {})
    return problem_response(
        status, title, detail, instance=request.url.path, headers=headers, extra=extra
    )


UNREACHABLE_RETRY_AFTER_SECONDS = 5
_UNREACHABLE_DETAILS = {
    "database": "The database cannot be reached right now; retry later.",
    "dependency": "A service this request needs cannot be reached right now; retry later.",
}


# System errors of files, not of a connection: a bug or a broken deployment, never an outage.
_FILE_ERRORS = (
    FileNotFoundError,
    FileExistsError,
    PermissionError,
    IsADirectoryError,
    NotADirectoryError,
)


def _unreachable(exc: Exception) -> bool:
    """A connection to the database that could not be made or was lost (refused, reset, no
    route to the host, a name that does not resolve, timed out, the server shutting down or
    restarting): ``shared.is_lost_connection``, the request may succeed in a moment. A file's
    error is no outage: it stays a 500."""
    return is_lost_connection(exc) and not isinstance(exc, _FILE_ERRORS)


def _unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    if _unreachable(exc):
        # A service with a database (``create_service_app(database=...)``) names it; the
        # gateway has none, and what it lost is one of the services behind it.
        lost = "database" if "database" in request.app.state else "dependency"
        logger.warning(
            f"{lost} unreachable", extra={"path": request.url.path, "error": type(exc).__name__}
        )
        return problem_response(
            HTTP_503_SERVICE_UNAVAILABLE,
            "Service Unavailable",
            _UNREACHABLE_DETAILS[lost],
            instance=request.url.path,
            headers={"Retry-After": str(UNREACHABLE_RETRY_AFTER_SECONDS)},
        )
    logger.exception("unhandled error", extra={"path": request.url.path})
    return problem_response(
        HTTP_500_INTERNAL_SERVER_ERROR,
        "Internal Server Error",
        "An unexpected error occurred; it has been logged with this request id.",
        instance=request.url.path,
    )


_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}
_DETAILS = {
    404: "No resource exists at this path.",
    405: "This method is not allowed on this path.",
    413: "The request body is larger than this server accepts.",
    429: "Too many requests; retry later.",
}

exception_handlers: dict[type[Exception] | int, Any] = {
    ProblemError: _problem_error,
    HTTPException: _http_exception,
    Exception: _unexpected,
}


async def send_problem(scope: Scope, receive: Receive, send: Send, exc: Exception) -> None:
    """Answer ``exc`` as the app's exception handlers would (most specific class first), for an
    ASGI layer that runs before Litestar's router: the gateway's lane for proxied requests."""
    handler = next(
        exception_handlers[cls] for cls in type(exc).__mro__ if cls in exception_handlers
    )
    litestar_app = scope["litestar_app"]
    request = litestar_app.request_class(scope=scope, receive=receive, send=send)
    response = handler(request, exc)
    await response.to_asgi_response(
        app=None, request=request, type_encoders=litestar_app.type_encoders
    )(scope, receive, send)
