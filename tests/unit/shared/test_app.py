from __future__ import annotations

from typing import Any

import pytest
from litestar import Litestar, get
from litestar._kwargs import kwargs_model
from litestar.connection import ASGIConnection
from litestar.di import NamedDependency, Provide
from litestar.handlers import BaseRouteHandler
from litestar.params import FromPath
from litestar.routes import HTTPRoute
from litestar.testing import AsyncTestClient
from sqlalchemy import text

from shared import (
    INTERNAL_TOKEN_HEADER,
    PROBLEM_MEDIA_TYPE,
    REQUEST_ID_HEADER,
    Database,
    NotFoundError,
    ServiceUnavailableError,
    create_service_app,
)
from tests.support.processes import free_port


@get("/things/{thing_id:int}")
async def get_thing(thing_id: FromPath[int]) -> dict[str, int]:
    if thing_id != 1:
        raise NotFoundError("No such thing.")
    return {"id": thing_id}


@pytest.fixture
def app(database_url: str) -> Litestar:
    return create_service_app(
        service="test",
        route_handlers=[get_thing],
        internal_token="s3cret-token",
        database=Database(database_url),
    )


async def test_private_route_without_internal_credential_is_refused(app: Litestar) -> None:
    async with AsyncTestClient(app) as client:
        response = await client.get("/things/1")
    assert response.status_code == 401
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    assert response.json()["status"] == 401


async def test_private_route_with_wrong_internal_credential_is_refused(app: Litestar) -> None:
    async with AsyncTestClient(app) as client:
        response = await client.get("/things/1", headers={INTERNAL_TOKEN_HEADER: "s3cret-tokeX"})
    assert response.status_code == 401


async def test_private_route_with_internal_credential_answers(app: Litestar) -> None:
    async with AsyncTestClient(app) as client:
        response = await client.get("/things/1", headers={INTERNAL_TOKEN_HEADER: "s3cret-token"})
    assert response.status_code == 200
    assert response.json() == {"id": 1}


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/nowhere", 404),
        ("DELETE", "/things/1", 405),
        ("GET", "/things/abc", 404),
        ("GET", "/things/2", 404),
    ],
)
async def test_errors_are_problem_json_with_request_id(
    app: Litestar, method: str, path: str, status: int
) -> None:
    async with AsyncTestClient(app) as client:
        response = await client.request(
            method,
            path,
            headers={INTERNAL_TOKEN_HEADER: "s3cret-token", REQUEST_ID_HEADER: "abc-123"},
        )
    assert response.status_code == status
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    body = response.json()
    assert body["status"] == status
    assert body["request_id"] == "abc-123"
    assert response.headers[REQUEST_ID_HEADER] == "abc-123"
    assert {"type", "title", "detail"} <= body.keys()


async def test_unsafe_request_id_is_replaced(app: Litestar) -> None:
    async with AsyncTestClient(app) as client:
        response = await client.get("/healthz", headers={REQUEST_ID_HEADER: "bad id\nwith newline"})
    assert response.headers[REQUEST_ID_HEADER] != "bad id\nwith newline"
    assert len(response.headers[REQUEST_ID_HEADER]) == 32


async def test_health_ready_and_metrics_answer_without_credential(app: Litestar) -> None:
    async with AsyncTestClient(app) as client:
        assert (await client.get("/healthz")).json() == {"status": "ok"}
        ready = await client.get("/readyz")
        assert ready.status_code == 200
        assert ready.json()["checks"] == {"database": "ok"}
        await client.get("/things/1", headers={INTERNAL_TOKEN_HEADER: "s3cret-token"})
        metrics = await client.get("/metrics")
    assert metrics.status_code == 200
    assert "http_requests_total" in metrics.text


@pytest.mark.parametrize(
    ("http_version", "host", "status"),
    [("1.1", False, 400), ("1.1", True, 200), ("1.0", False, 200)],
)
async def test_every_service_answers_an_http11_request_without_host_400(
    app: Litestar, http_version: str, host: bool, status: int
) -> None:
    """RFC 9112 §3.2, in every service built by ``create_service_app`` (auth and facturation
    too, not only the gateway); HTTP/1.0 has no Host rule."""
    headers = [(INTERNAL_TOKEN_HEADER.lower().encode(), b"s3cret-token")]
    if host:
        headers.append((b"host", b"service.test"))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": http_version,
        "method": "GET",
        "scheme": "http",
        "path": "/things/1",
        "raw_path": b"/things/1",
        "root_path": "",
        "query_string": b"",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8001),
        "state": {},
    }
    sent: list[dict[str, object]] = []

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    async with AsyncTestClient(app):
        await app(scope, receive, send)  # type: ignore[arg-type]

    assert sent[0]["status"] == status
    if status == 400:
        content_type = dict(sent[0]["headers"])[b"content-type"]  # type: ignore[call-overload]
        assert content_type == PROBLEM_MEDIA_TYPE.encode()


async def test_the_app_guards_run_in_turn_after_the_credential_each_on_the_route(
    database_url: str,
) -> None:
    """The app's guards run as one (Litestar copies the route handler once per guard it runs):
    still after the credential check, in the order given, each seeing the route's handler, and
    a refusal stops the ones after it."""
    seen: list[tuple[str, str]] = []

    async def first(_: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
        seen.append(("first", handler.handler_name))
        if handler.opt.get("closed"):
            raise ServiceUnavailableError("Closed for maintenance.")

    def second(_: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
        seen.append(("second", handler.handler_name))

    @get("/closed", opt={"closed": True})
    async def closed() -> None: ...

    app = create_service_app(
        service="test",
        route_handlers=[get_thing, closed],
        internal_token="s3cret-token",
        database=Database(database_url),
        guards=[first, second],
    )
    assert len(app.guards) == 1
    async with AsyncTestClient(app) as client:
        refused = await client.get("/things/1")
        assert refused.status_code == 401
        assert seen == []
        answered = await client.get("/things/1", headers={INTERNAL_TOKEN_HEADER: "s3cret-token"})
        assert answered.status_code == 200
        assert seen == [("first", "get_thing"), ("second", "get_thing")]
        seen.clear()
        closed_answer = await client.get("/closed", headers={INTERNAL_TOKEN_HEADER: "s3cret-token"})
        assert closed_answer.status_code == 503
        assert seen == [("first", "closed")]


async def provide_caller(request: ASGIConnection[Any, Any, Any, Any]) -> str:
    return request.headers.get("x-caller", "nobody")


async def provide_greeting() -> str:
    return "hello"


async def provide_message(caller: NamedDependency[str], greeting: NamedDependency[str]) -> str:
    """A dependency of the two others: resolved after both."""
    return f"{greeting}, {caller}"


@get(
    "/greeting",
    dependencies={
        "caller": Provide(provide_caller),
        "greeting": Provide(provide_greeting),
        "message": Provide(provide_message),
    },
)
async def greeting_route(
    caller: NamedDependency[str], greeting: NamedDependency[str], message: NamedDependency[str]
) -> dict[str, str]:
    return {"caller": caller, "greeting": greeting, "message": message}


async def test_a_routes_dependencies_are_resolved_in_turn_without_a_task_group(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app = create_service_app(service="test", route_handlers=[greeting_route], internal_token="t")

    def no_task_group() -> None:
        raise AssertionError("the dependencies were resolved in a task group")

    monkeypatch.setattr(kwargs_model, "create_task_group", no_task_group)
    [route] = [r for r in app.routes if isinstance(r, HTTPRoute) and r.path == "/greeting"]
    _, model = route.route_handler_map["GET"]
    async with AsyncTestClient(app) as client:
        response = await client.get(
            "/greeting", headers={INTERNAL_TOKEN_HEADER: "t", "x-caller": "ada"}
        )

    assert [len(batch) for batch in model.dependency_batches] == [1, 1, 1]
    assert next(iter(model.dependency_batches[-1])).key == "message"
    assert response.status_code == 200
    assert response.json() == {"caller": "ada", "greeting": "hello", "message": "hello, ada"}


def _outage_app(database: Database) -> Litestar:
    """A service whose one route reads its database, and whose other fails on a missing file."""

    @get("/count")
    async def count() -> int:
        async with database.engine.connect() as connection:
            return int((await connection.execute(text("SELECT 1"))).scalar_one())

    @get("/report")
    async def report() -> str:
        raise FileNotFoundError("/nowhere/report.txt")

    return create_service_app(
        service="test", route_handlers=[count, report], internal_token="t", database=database
    )


async def test_a_database_out_of_reach_is_a_503_problem_with_retry_after(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Nothing listens on the port: every connection is refused, as while the database restarts.
    database = Database(f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/gone")
    async with AsyncTestClient(_outage_app(database)) as client:  # its lifespan disposes it
        response = await client.get("/count", headers={INTERNAL_TOKEN_HEADER: "t"})

    assert response.status_code == 503
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    assert response.headers["retry-after"] == "5"
    assert response.json()["detail"] == "The database cannot be reached right now; retry later."
    assert "database unreachable" in caplog.text
    assert "unhandled error" not in caplog.text  # an outage, not a bug: no traceback logged


async def test_a_service_without_a_database_names_no_database_when_a_connection_is_lost(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The gateway has no database: a connection it lost is to a service behind it."""

    @get("/relay")
    async def relay() -> str:
        raise ConnectionResetError("the peer reset the connection")

    app = create_service_app(service="test", route_handlers=[relay], internal_token="t")
    async with AsyncTestClient(app) as client:
        response = await client.get("/relay", headers={INTERNAL_TOKEN_HEADER: "t"})

    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    assert response.json()["detail"] == (
        "A service this request needs cannot be reached right now; retry later."
    )
    assert "dependency unreachable" in caplog.text
    assert "database" not in caplog.text


async def test_any_other_system_error_stays_a_500(database_url: str) -> None:
    async with AsyncTestClient(_outage_app(Database(database_url))) as client:
        reachable = await client.get("/count", headers={INTERNAL_TOKEN_HEADER: "t"})
        response = await client.get("/report", headers={INTERNAL_TOKEN_HEADER: "t"})

    assert reachable.status_code == 200
    assert reachable.json() == 1
    assert response.status_code == 500
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    assert "retry-after" not in response.headers
