"""Liveness (``/healthz``) and readiness (``/readyz``, every dependency reachable)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from litestar import Response, get
from litestar.handlers import HTTPRouteHandler

from shared._internal import PUBLIC_ROUTE
from shared._problems import problem_response

__all__ = ["ReadinessCheck", "health_route_handlers"]

ReadinessCheck = Callable[[], Awaitable[Any]]
CHECK_TIMEOUT_SECONDS = 2.0


async def _run_check(check: ReadinessCheck) -> str:
    try:
        await asyncio.wait_for(check(), CHECK_TIMEOUT_SECONDS)
    except TimeoutError:
        return "timeout"
    except Exception as exc:  # a readiness probe reports any failure, it never raises
        return f"error: {type(exc).__name__}"
    return "ok"


def health_route_handlers(
    checks: Mapping[str, ReadinessCheck],
    details: Callable[[], Mapping[str, str]] | None = None,
) -> list[HTTPRouteHandler]:
    """The liveness and readiness routes.

    Args:
        details: what ``/healthz`` shows beside its status (e.g. facturation's billing mode).
    """

    @get("/healthz", opt={PUBLIC_ROUTE: True}, include_in_schema=False, sync_to_thread=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok", **(details() if details is not None else {})}

    @get("/readyz", opt={PUBLIC_ROUTE: True}, include_in_schema=False)
    async def readyz() -> Response[Any]:
        names = list(checks)
        results = await asyncio.gather(*(_run_check(checks[name]) for name in names))
        outcome = dict(zip(names, results, strict=True))
        if all(result == "ok" for result in results):
            return Response({"status": "ready", "checks": outcome})
        failing = ", ".join(name for name, result in outcome.items() if result != "ok")
        return problem_response(
            503, "Service Unavailable", f"Not ready: {failing}.", extra={"checks": outcome}
        )

    return [healthz, readyz]
