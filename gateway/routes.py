"""The public route table: which public path goes to which private service, and whether it needs
a token. Everything not listed here answers 404 without touching a private service."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from litestar.exceptions import MethodNotAllowedException

from shared import NotFoundError

__all__ = ["API_PREFIX", "ROUTES", "Route", "find_route", "known_route", "match_route"]

API_PREFIX = "/api/v1"
Upstream = Literal["auth", "facturation"]


@dataclass(frozen=True, slots=True)
class Route:
    """``path`` is the public path; a ``{name}`` segment matches any one non-empty segment."""

    path: str
    methods: frozenset[str]
    upstream: Upstream
    needs_token: bool
    revokes_token: bool = False
    limited_per_address: bool = False
    """The upstream limits this route per client address: its 429s are repeated from memory
    (``Retry-After`` long) without forwarding, so a client that keeps knocking costs it nothing."""
    relayed: bool = False
    """Its requests go through the webhook relay (``webhook_relay.py``): several in one request
    to the upstream when they arrive faster than it answers."""

    @property
    def allow(self) -> str:
        """The ``Allow`` header: this route's methods, and OPTIONS, which the gateway answers."""
        return ", ".join(sorted(self.methods | {"OPTIONS"}))

    def upstream_path(self, public_path: str) -> str:
        """The public path without ``/api/v1`` (the webhook path is not prefixed)."""
        if public_path.startswith(API_PREFIX):
            return public_path[len(API_PREFIX) :]
        return public_path


def _methods(*names: str) -> frozenset[str]:
    found = set(names)
    if "GET" in found:
        found.add("HEAD")
    return frozenset(found)


def _billing(path: str, *methods: str) -> Route:
    return Route(f"{API_PREFIX}/billing{path}", _methods(*methods), "facturation", needs_token=True)


ROUTES: tuple[Route, ...] = (
    Route(
        f"{API_PREFIX}/auth/register",
        _methods("POST"),
        "auth",
        needs_token=False,
        limited_per_address=True,
    ),
    Route(f"{API_PREFIX}/auth/login", _methods("POST"), "auth", needs_token=False),
    Route(
        f"{API_PREFIX}/auth/logout", _methods("POST"), "auth", needs_token=True, revokes_token=True
    ),
    Route(f"{API_PREFIX}/auth/jwks.json", _methods("GET"), "auth", needs_token=False),
    Route(f"{API_PREFIX}/users/me", _methods("GET"), "auth", needs_token=True),
    Route(
        f"{API_PREFIX}/users/me/stripe-customer", _methods("PUT"), "facturation", needs_token=True
    ),
    Route(f"{API_PREFIX}/products", _methods("GET"), "facturation", needs_token=False),
    Route(f"{API_PREFIX}/basket/validate", _methods("POST"), "facturation", needs_token=True),
    # Every public billing route of DESIGN.md, one row each: the exact methods a path has are
    # what a 405's Allow and an OPTIONS answer name.
    _billing("/customer", "POST"),
    _billing("/checkout-sessions", "POST"),
    _billing("/checkout-sessions/{id}", "GET"),
    _billing("/invoices", "GET"),
    _billing("/invoices/{id}", "GET"),
    _billing("/invoices/{id}/pdf", "GET"),
    _billing("/orders", "GET"),
    _billing("/orders/{id}", "GET"),
    _billing("/entitlements", "GET"),
    _billing("/subscriptions", "GET"),
    _billing("/subscriptions/{id}/cancel", "POST"),
    _billing("/subscriptions/{id}/resume", "POST"),
    _billing("/portal-sessions", "POST"),
    Route("/webhooks/stripe", _methods("POST"), "facturation", needs_token=False, relayed=True),
)

_EXACT = {route.path: route for route in ROUTES if "{" not in route.path}
# By segment count, each a list of (segments with None for a parameter, route).
_TEMPLATES: dict[int, list[tuple[tuple[str | None, ...], Route]]] = {}
for _route in ROUTES:
    if "{" in _route.path:
        _segments = tuple(None if part.startswith("{") else part for part in _route.path.split("/"))
        _TEMPLATES.setdefault(len(_segments), []).append((_segments, _route))


def _template_match(path: str) -> Route | None:
    parts = path.split("/")
    for segments, route in _TEMPLATES.get(len(parts), ()):
        if all(
            part if expected is None else part == expected
            for expected, part in zip(segments, parts, strict=True)
        ):
            return route
    return None


def _is_plain(path: str) -> bool:
    """No dot segments and no encoded slash or dot: what we match is what the upstream routes."""
    if "%" in path:
        lowered = path.lower()
        if "%2e" in lowered or "%2f" in lowered or "%5c" in lowered:
            return False
    return "/." not in path and "\\" not in path


def match_route(method: str, path: str) -> Route:
    """The route for a raw request path.

    Raises:
        NotFoundError: no public route has this path.
        MethodNotAllowedException: the path exists, the method does not.
    """
    route = find_route(path)
    if method not in route.methods:
        raise MethodNotAllowedException(headers={"Allow": route.allow})
    return route


def find_route(path: str) -> Route:
    """The route for a raw request path, whatever the method.

    Raises:
        NotFoundError: no public route has this path.
    """
    route = known_route(path)
    if route is None:
        raise NotFoundError("No resource exists at this path.")
    return route


def known_route(path: str) -> Route | None:
    """The route for a raw request path, whatever the method; None where :func:`find_route`
    answers 404."""
    route = _EXACT.get(path) or _template_match(path)
    if route is None or not _is_plain(path):
        return None
    return route
