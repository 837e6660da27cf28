"""The one way a service's Litestar app is assembled: request ids, problem+json errors, health,
metrics, the database, and — for private services — the internal-credential guard."""

from __future__ import annotations

import gc
import inspect
import os
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any

from litestar import Litestar
from litestar.config.cors import CORSConfig
from litestar.connection import ASGIConnection
from litestar.datastructures import State
from litestar.di import Provide
from litestar.handlers import BaseRouteHandler
from litestar.middleware import DefineMiddleware
from litestar.openapi.config import OpenAPIConfig
from litestar.routes import HTTPRoute
from litestar.types import ASGIApp, ControllerRouterHandler, Guard, Middleware

from shared._database import Database, provide_db_session
from shared._health import ReadinessCheck, health_route_handlers
from shared._internal import require_internal_token
from shared._json_policy import MAX_JSON_DEPTH, JsonPolicyMiddleware
from shared._metrics import MetricsController, metrics_config, metrics_middleware
from shared._middleware import PreflightRefusalProblem, RequestIdMiddleware, RequireHost
from shared._openapi import ApiDocs, TruthfulJsonRenderPlugin
from shared._problems import exception_handlers

__all__ = ["create_service_app", "freeze_startup_objects"]

Lifespan = Callable[[Litestar], AbstractAsyncContextManager[Any]]


# Set by ``run_service`` (so uvicorn's worker processes inherit it): only a served process
# freezes; a test process that builds many apps keeps collecting everything.
FREEZE_AFTER_STARTUP = "SHARED_FREEZE_AFTER_STARTUP"


# Container objects allocated (net of those freed) between two collections of the youngest
# generation, after start-up; CPython's default is 700.
YOUNG_COLLECTION_EVERY = 20_000


def freeze_startup_objects() -> None:
    """Everything alive once the app is built (modules, routes, the ORM's mappers) lives as long
    as the process: out of the collector's sight, a full collection under load walks only what
    requests allocated, instead of pausing every request in flight for tens of milliseconds.

    The youngest generation is then collected every :data:`YOUNG_COLLECTION_EVERY` allocations
    instead of 700: a request's objects are freed by their reference counts long before, and a
    collection every 700 walked the objects of every request in flight, and promoted them, each
    time (the older generations follow, ten of the younger's collections each). Under webhook
    intake that was 9 % of facturation's CPU (2,300 collections, 17 of them full at 8 ms each, in
    one ``bench_webhooks`` run; 10 with this setting) and 6 % of the gateway's.

    Every app built here runs it at start-up; an app built otherwise (the Stripe sandbox) adds
    it to its own ``on_startup``."""
    if os.environ.get(FREEZE_AFTER_STARTUP) == "1":
        gc.collect()
        gc.freeze()
        gc.set_threshold(YOUNG_COLLECTION_EVERY, *gc.get_threshold()[1:])


def create_service_app(
    *,
    service: str,
    route_handlers: Sequence[ControllerRouterHandler],
    internal_token: str | None,
    database: Database | None = None,
    readiness: Mapping[str, ReadinessCheck] | None = None,
    health_details: Callable[[], Mapping[str, str]] | None = None,
    state: Mapping[str, Any] | None = None,
    dependencies: Mapping[str, Provide] | None = None,
    lifespan: Sequence[Lifespan] = (),
    middleware: Sequence[Middleware] = (),
    guards: Sequence[Guard] = (),
    cors_config: CORSConfig | None = None,
    request_max_body_size: int = 1_048_576,
    max_json_depth: int | None = MAX_JSON_DEPTH,
    api_docs: ApiDocs | None = None,
    front: Callable[[ASGIApp], ASGIApp] | None = None,
    debug: bool = False,
) -> Litestar:
    """Build a service app.

    Args:
        internal_token: the credential every non-public route requires; ``None`` for the gateway,
            whose routes are public by design.
        readiness: named checks ``/readyz`` runs; the database is added when given.
        max_json_depth: bodies nesting deeper are refused with 400 before any decoder runs
            (``shared._json_policy``); ``None`` for the gateway, which streams bodies through.
        api_docs: the problems, security and extra statuses ``/schema/openapi.json`` documents
            beyond what Litestar sees (``shared._openapi``).
        health_details: what ``/healthz`` shows beside its status.
        front: wraps the whole handler, outside the request id middleware: an ASGI layer that
            may answer some requests before routing (the gateway's proxied requests); for those
            it does the middleware's work itself (``with_request_id``, ``log_exchange``).
    """
    checks: dict[str, ReadinessCheck] = {}
    app_state: dict[str, Any] = dict(state or {})
    app_dependencies: dict[str, Provide] = dict(dependencies or {})
    on_shutdown: list[Callable[[], Any]] = []
    if database is not None:
        checks["database"] = database.ping
        app_state["database"] = database
        app_dependencies["db_session"] = Provide(provide_db_session)
        on_shutdown.append(database.dispose)
    checks.update(readiness or {})
    app_guards: list[Guard] = list(guards)
    if internal_token is not None:
        app_state["internal_token"] = internal_token
        app_guards.insert(0, require_internal_token)
    metrics = metrics_config(service)
    app_middleware: list[Middleware] = [metrics_middleware(metrics), RequireHost]
    if max_json_depth is not None:
        app_middleware.append(
            DefineMiddleware(
                JsonPolicyMiddleware, max_depth=max_json_depth, max_bytes=request_max_body_size
            )
        )
    app_middleware.extend(middleware)

    app = Litestar(
        route_handlers=[
            *health_route_handlers(checks, health_details),
            MetricsController,
            *route_handlers,
        ],
        state=State(app_state),
        dependencies=app_dependencies,
        guards=_as_one_guard(app_guards),
        middleware=app_middleware,
        exception_handlers=exception_handlers,
        lifespan=list(lifespan),
        on_startup=[freeze_startup_objects],
        on_shutdown=on_shutdown,
        cors_config=cors_config,
        request_max_body_size=request_max_body_size,
        openapi_config=OpenAPIConfig(
            title=service,
            version="1",
            path="/schema",
            render_plugins=[
                TruthfulJsonRenderPlugin(api_docs or ApiDocs(), private=internal_token is not None)
            ],
        ),
        # Logging is configure_logging's (JSON, LOG_LEVEL); Litestar's default config would
        # replace the root handler at start-up with a plain-text one at INFO.
        logging_config=None,
        debug=debug,
    )
    _resolve_dependencies_in_turn(app)
    if cors_config is not None:
        app.asgi_handler = PreflightRefusalProblem(app.asgi_handler)
    # Outermost, so 404s, CORS answers and exception responses all carry the request id.
    app.asgi_handler = RequestIdMiddleware(app.asgi_handler)
    if front is not None:
        app.asgi_handler = front(app.asgi_handler)
    return app


def _resolve_dependencies_in_turn(app: Litestar) -> None:
    """Each route's dependencies are resolved one after another, not in batches run at once.

    Litestar resolves the dependencies a route has at one level (its caller's ``identity`` and
    a collaborator, say) concurrently: an anyio task group and a task each, on every request,
    which cost 4-7 % of facturation's CPU per Checkout Session (py-spy, docs/benchmarks.md; a
    known Litestar cost, litestar-org/litestar#4563). Every dependency of these services is in
    memory (an identity read from headers, an object the app built, a session not yet used),
    so running them at once gains nothing. Each batch, whose members need none of each other,
    becomes batches of one in the same order, which Litestar awaits directly.

    Raises:
        RuntimeError: this version of Litestar no longer keeps its route's dependency batches
            where they were: this must be looked at again, not silently skipped.
    """
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for _handler, kwargs_model in route.route_handler_map.values():
            batches = getattr(kwargs_model, "dependency_batches", None)
            if not isinstance(batches, list):
                raise RuntimeError("KwargsModel.dependency_batches is gone: revisit shared/_app.py")
            kwargs_model.dependency_batches = [
                {dependency} for batch in batches for dependency in batch
            ]


def _as_one_guard(guards: Sequence[Guard]) -> list[Guard]:
    """The app's guards as one guard that runs them in turn. Litestar hands every guard its own
    ``copy()`` of the route handler: with two app guards, that copying cost facturation 6 % of
    its CPU per Checkout Session (py-spy, docs/benchmarks.md); one guard pays it once."""
    if len(guards) <= 1:
        return list(guards)

    async def app_guards(
        connection: ASGIConnection[Any, Any, Any, Any], route_handler: BaseRouteHandler
    ) -> None:
        for guard in guards:
            checked = guard(connection, route_handler)
            if inspect.isawaitable(checked):
                await checked

    return [app_guards]
