"""The public route table: which public path goes to which private service, and whether it needs
a token. Everything not listed here answers 404 without touching a private service."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from litestar.exceptions import MethodNotAllowedException

from shared import NotFoundError

__all__ = ["API_PREFIX", "ROUTES", "Route", "match_route"]

API_PREFIX = "/api/v1"
Upstream = Literal["auth", "facturation"]


@dataclass(frozen=True, slots=True)
class Route:
    """``path`` is the public path; with ``prefix`` every path below ``path + "/"`` matches too."""

    path: str
    methods: frozenset[str]
    upstream: Upstream
    needs_token: bool
    prefix: bool = False
    revokes_token: bool = False

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


ROUTES: tuple[Route, ...] = (
    Route(f"{API_PREFIX}/auth/register", _methods("POST"), "auth", needs_token=False),
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
    Route(
        f"{API_PREFIX}/billing",
        _methods("GET", "POST", "PUT", "PATCH", "DELETE"),
        "facturation",
        needs_token=True,
        prefix=True,
    ),
    Route("/webhooks/stripe", _methods("POST"), "facturation", needs_token=False),
)

_EXACT = {route.path: route for route in ROUTES if not route.prefix}
_PREFIXES = tuple((route.path + "/", route) for route in ROUTES if route.prefix)


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
    route = _EXACT.get(path)
    if route is None:
        for start, candidate in _PREFIXES:
            if path.startswith(start) and len(path) > len(start):
                route = candidate
                break
    if route is None or not _is_plain(path):
        raise NotFoundError("No resource exists at this path.")
    if method not in route.methods:
        raise MethodNotAllowedException(headers={"Allow": ", ".join(sorted(route.methods))})
    return route
