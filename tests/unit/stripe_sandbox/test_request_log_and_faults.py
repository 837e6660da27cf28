"""The request log and scripted faults, over HTTP (the sandbox as a server) and in-process."""

from __future__ import annotations

import time
from typing import Any, cast

import httpx
import pytest
import stripe

from stripe_sandbox import api
from stripe_sandbox.faults import FaultKind
from tests.support.sandbox import SANDBOX_URL, InProcessSandbox
from tests.unit.stripe_sandbox.conftest import API_KEY
from tests.unit.stripe_sandbox.helpers import create_customer

AUTH = {"Authorization": f"Bearer {API_KEY}"}


async def test_every_api_call_is_logged_with_params_idempotency_key_headers_and_answer(
    client: stripe.StripeClient, sandbox_url: str
) -> None:
    customer = await client.v1.customers.create_async(
        params={"email": "ada@example.com", "metadata": {"user_id": "u-1"}},
        options={"idempotency_key": "create-u-1"},
    )
    await client.v1.customers.retrieve_async(customer.id)
    async with httpx.AsyncClient(base_url=sandbox_url) as http:
        log = (await http.get("/sandbox/requests")).json()
        only_posts = (await http.get("/sandbox/requests", params={"method": "POST"})).json()
        newest = (await http.get("/sandbox/requests", params={"limit": 1})).json()
        cleared = await http.delete("/sandbox/requests")
        after = (await http.get("/sandbox/requests")).json()

    created, retrieved = log["data"]
    assert (created["method"], created["path"], created["status"]) == ("POST", "/v1/customers", 200)
    assert created["params"] == {"email": "ada@example.com", "metadata": {"user_id": "u-1"}}
    assert created["body"] == "email=ada%40example.com&metadata[user_id]=u-1"
    assert created["idempotency_key"] == "create-u-1"
    assert created["headers"]["authorization"] == f"Bearer {API_KEY}"
    assert created["headers"]["stripe-version"] == stripe.api_version
    assert customer.last_response is not None
    assert created["request_id"] == customer.last_response.request_id
    assert created["fault"] is None
    assert (retrieved["method"], retrieved["path"]) == ("GET", f"/v1/customers/{customer.id}")
    assert only_posts["data"] == [created]
    assert newest["data"] == [retrieved]
    assert (log["in_flight"], log["max_in_flight"]) == (0, 1)
    assert cleared.status_code == 204
    assert after["data"] == []


async def test_a_key_that_is_not_a_test_key_is_masked_in_the_log(sandbox_url: str) -> None:
    async with httpx.AsyncClient(base_url=sandbox_url) as http:
        refused = await http.get("/v1/customers", headers={"Authorization": "Bearer sk_live_real"})
        [logged] = (await http.get("/sandbox/requests")).json()["data"]

    assert refused.status_code == 401
    assert logged["headers"]["authorization"] == "Bearer ****"
    assert logged["status"] == 401


async def test_scripted_500s_answer_the_next_calls_then_the_endpoint_works_again(
    client: stripe.StripeClient, sandbox_url: str
) -> None:
    async with httpx.AsyncClient(base_url=sandbox_url) as http:
        added = await http.post(
            "/sandbox/faults",
            json={"method": "POST", "path": "/v1/customers", "count": 2, "kind": "api_error"},
        )
        pending = (await http.get("/sandbox/faults")).json()["data"]
    for _ in range(2):
        with pytest.raises(stripe.APIError) as caught:
            await create_customer(client)
        assert caught.value.http_status == 500
        assert caught.value.request_id is not None
    listed = await client.v1.customers.list_async()  # another endpoint is untouched
    customer = await create_customer(client)
    async with httpx.AsyncClient(base_url=sandbox_url) as http:
        left = (await http.get("/sandbox/faults")).json()["data"]
        log = (await http.get("/sandbox/requests", params={"path": "/v1/customers"})).json()

    assert added.status_code == 201
    assert [(f["method"], f["path"], f["kind"], f["count"]) for f in pending] == [
        ("POST", "/v1/customers", "api_error", 2)
    ]
    assert listed.data == []
    assert customer.id.startswith("cus_")
    assert left == []
    assert [(r["method"], r["fault"], r["status"]) for r in log["data"]] == [
        ("POST", "api_error", 500),
        ("POST", "api_error", 500),
        ("GET", None, 200),
        ("POST", None, 200),
    ]


@pytest.mark.parametrize(
    ("kind", "error_class", "status", "code"),
    [
        ("api_error", stripe.APIError, 500, None),
        ("rate_limit", stripe.RateLimitError, 429, "rate_limit"),
        ("card_declined", stripe.CardError, 402, "card_declined"),
        ("invalid_request", stripe.InvalidRequestError, 400, None),
        ("idempotency_error", stripe.IdempotencyError, 400, None),
        ("invalid_api_key", stripe.AuthenticationError, 401, None),
    ],
)
async def test_each_error_fault_raises_the_sdks_own_error_class(
    client: stripe.StripeClient,
    sandbox_url: str,
    kind: str,
    error_class: type[stripe.StripeError],
    status: int,
    code: str | None,
) -> None:
    async with httpx.AsyncClient(base_url=sandbox_url) as http:
        await http.post("/sandbox/faults", json={"method": "*", "path": "/v1/*", "kind": kind})

    with pytest.raises(error_class) as caught:
        await create_customer(client)

    assert caught.value.http_status == status
    assert caught.value.request_id is not None
    body = cast("dict[str, Any]", caught.value.json_body)
    assert body["error"].get("code") == code
    assert body["error"]["message"]


async def test_a_fault_message_and_param_reach_the_client(
    client: stripe.StripeClient, sandbox_url: str
) -> None:
    async with httpx.AsyncClient(base_url=sandbox_url) as http:
        await http.post(
            "/sandbox/faults",
            json={
                "method": "post",
                "path": "/v1/customers",
                "kind": "invalid_request",
                "message": "The email is invalid.",
                "param": "email",
            },
        )

    with pytest.raises(stripe.InvalidRequestError) as caught:
        await create_customer(client)

    assert caught.value.user_message == "The email is invalid."
    assert caught.value.param == "email"


async def test_a_path_glob_matches_only_the_endpoints_it_names(
    client: stripe.StripeClient, sandbox_url: str
) -> None:
    customer = await create_customer(client)
    async with httpx.AsyncClient(base_url=sandbox_url) as http:
        await http.post(
            "/sandbox/faults",
            json={"method": "GET", "path": "/v1/customers/*", "kind": "api_error"},
        )
    listed = await client.v1.customers.list_async()
    with pytest.raises(stripe.APIError):
        await client.v1.customers.retrieve_async(customer.id)

    assert [c.id for c in listed.data] == [customer.id]


async def test_a_timeout_fault_holds_the_answer_past_the_clients_timeout(
    sandbox_url: str,
) -> None:
    async with httpx.AsyncClient(base_url=sandbox_url, headers=AUTH) as http:
        await http.post(
            "/sandbox/faults",
            json={"method": "GET", "path": "/v1/invoices", "kind": "timeout", "seconds": 1},
        )
        started = time.perf_counter()
        with pytest.raises(httpx.ReadTimeout):
            await http.get("/v1/invoices", timeout=0.2)
        waited = time.perf_counter() - started
        answered = await http.get("/v1/invoices")

    assert waited >= 0.2
    assert answered.status_code == 200


async def test_a_disconnect_fault_closes_the_connection_without_a_complete_answer(
    sandbox_url: str,
) -> None:
    async with httpx.AsyncClient(base_url=sandbox_url, headers=AUTH) as http:
        await http.post(
            "/sandbox/faults", json={"method": "GET", "path": "/v1/invoices", "kind": "disconnect"}
        )
        with pytest.raises(httpx.TransportError):
            await http.get("/v1/invoices")
        answered = await http.get("/v1/invoices")
        [dropped, _] = (await http.get("/sandbox/requests")).json()["data"]

    assert answered.status_code == 200
    assert (dropped["fault"], dropped["status"]) == ("disconnect", None)


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"method": "POST", "path": "/v1/customers", "kind": "meltdown"}, "kind"),
        ({"method": "POST", "path": "/v1/customers", "kind": "api_error", "count": 0}, "count"),
        ({"path": "/v1/customers", "kind": "api_error"}, "method"),
        ({"method": "POST", "kind": "api_error"}, "path"),
        ({"method": "GET", "path": "/v1/x", "kind": "timeout", "seconds": -1}, "seconds"),
    ],
)
async def test_a_bad_fault_is_refused_and_nothing_is_scripted(
    sandbox_url: str, body: dict[str, object], param: str
) -> None:
    async with httpx.AsyncClient(base_url=sandbox_url) as http:
        response = await http.post("/sandbox/faults", json=body)
        pending = (await http.get("/sandbox/faults")).json()["data"]

    assert response.status_code == 400
    assert response.json()["error"]["param"] == param
    assert pending == []


async def test_clearing_faults_lets_every_call_through(
    client: stripe.StripeClient, sandbox_url: str
) -> None:
    async with httpx.AsyncClient(base_url=sandbox_url) as http:
        await http.post(
            "/sandbox/faults", json={"method": "*", "path": "*", "kind": "api_error", "count": 5}
        )
        cleared = await http.delete("/sandbox/faults")

    customer = await create_customer(client)

    assert cleared.status_code == 204
    assert customer.id.startswith("cus_")


async def test_latency_changed_at_run_time_applies_to_the_next_call() -> None:
    sandbox = InProcessSandbox()
    async with httpx.AsyncClient(
        transport=sandbox.transport(), base_url=SANDBOX_URL, headers=AUTH
    ) as http:
        started = time.perf_counter()
        await http.get("/v1/invoices")
        fast = time.perf_counter() - started
        await http.post("/sandbox/config", json={"latency_ms": 300})
        started = time.perf_counter()
        await http.get("/v1/invoices")
        slow = time.perf_counter() - started

    assert slow >= 0.3
    assert fast < 0.3


async def test_latency_counts_from_arrival_the_sandbox_own_work_included(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Stripe at 300 ms answers 300 ms after the request arrived: the stand-in's own work (here
    a slow 0.25 s answer) is done within the latency, not added after it (0.55 s)."""
    working = api._answer

    def slow_answer(*args: Any, **kwargs: Any) -> Any:
        time.sleep(0.25)
        return working(*args, **kwargs)

    monkeypatch.setattr(api, "_answer", slow_answer)
    sandbox = InProcessSandbox()
    async with httpx.AsyncClient(
        transport=sandbox.transport(), base_url=SANDBOX_URL, headers=AUTH
    ) as http:
        await http.post("/sandbox/config", json={"latency_ms": 300})
        started = time.perf_counter()
        answered = await http.get("/v1/invoices")
        took = time.perf_counter() - started

    assert answered.status_code == 200
    assert 0.3 <= took < 0.5


@pytest.mark.parametrize(
    ("kind", "error"),
    [("timeout", httpx.ReadTimeout), ("disconnect", httpx.RemoteProtocolError)],
)
async def test_in_process_the_transport_turns_network_faults_into_httpx_errors(
    kind: FaultKind, error: type[Exception]
) -> None:
    sandbox = InProcessSandbox()
    sandbox.faults.add("GET", "/v1/invoices", kind)
    async with httpx.AsyncClient(
        transport=sandbox.transport(), base_url=SANDBOX_URL, headers=AUTH, timeout=0.2
    ) as http:
        with pytest.raises(error):
            await http.get("/v1/invoices")
        answered = await http.get("/v1/invoices")

    assert answered.status_code == 200
    assert [(r.fault, r.status) for r in sandbox.requests] == [(kind, None), (None, 200)]


async def test_in_process_stripe_python_retries_a_scripted_500_with_the_same_key() -> None:
    sandbox = InProcessSandbox()
    sandbox.faults.add("POST", "/v1/customers", "api_error")
    api = sandbox.stripe_api(max_network_retries=1)
    try:
        customer = await api.create_customer(
            user_id="u-1", email="ada@example.com", name=None, idempotency_key="k-1"
        )
    finally:
        await api.close()

    assert [(r.status, r.idempotency_key) for r in sandbox.posts("/v1/customers")] == [
        (500, "k-1"),
        (200, "k-1"),
    ]
    assert list(sandbox.state.customers) == [customer.id]
