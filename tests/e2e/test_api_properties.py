"""Property-based API tests (issue 15): schemathesis generates requests from each document the
system publishes — auth's and facturation's ``/schema/openapi.json`` and the gateway's public
``/api/v1/openapi.json`` — and sends them to the real processes on loopback. Not one answer may
be a server error, or a status, content type or body the document does not declare.

Stripe's HTTP is answered by the fake Stripe process, as in the checkout e2e tests.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import hypothesis
import pytest
import pytest_asyncio
import schemathesis
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from shared import INTERNAL_TOKEN_HEADER, RELAY_MEDIA_TYPE
from tests.e2e.conftest import AUTH_ENV
from tests.support.processes import ServiceProcess
from tests.support.stack import Stack, start_stack

pytestmark = pytest.mark.asyncio(loop_scope="module")

MAX_EXAMPLES = 6
"""Per operation; about 30 operations over three documents keep the whole run well under 60 s."""
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@schemathesis.serializer(RELAY_MEDIA_TYPE)
def _relay_body(_context: Any, value: Any) -> bytes:
    """The relay route's body (a binary string in its document) goes as the bytes generated: the
    route must refuse what does not read as the gateway's relay, 400 and nothing stored."""
    data = getattr(value, "data", value)  # schemathesis wraps a binary string's bytes
    return data if isinstance(data, bytes) else str(data).encode()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def system(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    tmp_path = tmp_path_factory.mktemp("properties")
    stripe = ServiceProcess("stripe_sandbox", {"SANDBOX_WEBHOOK_URL": ""}, tmp_path)
    await asyncio.to_thread(stripe.start)
    try:
        async with _stack(tmp_path, stripe.url) as running:
            yield running
    finally:
        await asyncio.to_thread(stripe.stop)


def _stack(tmp_path: Path, stripe_url: str) -> Any:
    return start_stack(
        tmp_path,
        facturation_url="start",
        auth_env={
            **AUTH_ENV,
            "ARGON2_TIME_COST": "1",
            "ARGON2_MEMORY_KIB": "1024",
            "ARGON2_PARALLELISM": "1",
        },
        facturation_env={
            "STRIPE_SECRET_KEY": "sk_test_properties",
            "STRIPE_API_BASE": stripe_url,
            "STRIPE_WEBHOOK_SECRET": "whsec_properties_0123456789abcdef",
            "CHECKOUT_RETURN_ORIGINS": "https://shop.example",
        },
    )


def fuzz(
    document: dict[str, Any], base_url: str, headers: dict[str, str]
) -> tuple[list[str], dict[int, int]]:
    """Every operation of ``document`` against ``base_url``: the failures, one line each, and how
    many answers of each status were seen."""
    schema = schemathesis.openapi.from_dict(document)
    failures: list[str] = []
    statuses: dict[int, int] = {}
    # Logging out revokes the token the other operations are called with: it goes last.
    found = []
    for result in schema.get_all_operations():
        if isinstance(result, Ok):
            found.append(result.ok())
        else:
            failures.append(f"the document does not load: {result.err()}")
    for operation in sorted(found, key=lambda operation: "/logout" in operation.path):

        @hypothesis.settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(hypothesis.HealthCheck),
            phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
        )
        @hypothesis.given(case=operation.as_strategy())
        def check(case: schemathesis.Case[Any]) -> None:
            response = case.call(base_url=base_url, headers=headers, timeout=15)
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            case.validate_response(response, checks=CHECKS)

        try:
            check()
        except Exception as exc:  # collected, so one run reports every broken operation
            failures.append(f"{operation.label}: {str(exc)[:2000]}")
    return failures, statuses


async def _document(url: str, headers: dict[str, str]) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=15) as http:
        response = await http.get(url, headers=headers)
    assert response.status_code == 200, response.text
    document: dict[str, Any] = response.json()
    return document


async def _bearer(stack: Stack) -> str:
    user = {"email": "props@example.com", "password": "correct horse battery", "name": "Props"}
    async with httpx.AsyncClient(base_url=stack.url, timeout=15) as http:
        await http.post("/api/v1/auth/register", json=user)
        response = await http.post("/api/v1/auth/login", json=user)
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


@pytest.mark.parametrize("service", ["auth", "facturation"])
async def test_a_private_service_answers_only_what_its_document_declares(
    system: Stack, service: str
) -> None:
    base_url = system.auth.url if service == "auth" else system.facturation_url
    headers = {INTERNAL_TOKEN_HEADER: system.internal_token}
    document = await _document(f"{base_url}/schema/openapi.json", headers)

    started = time.monotonic()
    failures, statuses = await asyncio.to_thread(fuzz, document, base_url, headers)

    assert failures == [], "\n\n".join(failures)
    assert time.monotonic() - started < 60
    assert sum(statuses.values()) >= 2 * len(document["paths"]), statuses
    assert any(200 <= status < 300 for status in statuses), statuses


async def test_the_gateway_answers_only_what_its_public_document_declares(system: Stack) -> None:
    document = await _document(f"{system.url}/api/v1/openapi.json", {})
    headers = {"Authorization": f"Bearer {await _bearer(system)}"}

    started = time.monotonic()
    failures, statuses = await asyncio.to_thread(fuzz, document, system.url, headers)

    assert failures == [], "\n\n".join(failures)
    assert time.monotonic() - started < 60
    assert sum(statuses.values()) >= 2 * len(document["paths"]), statuses
    assert any(200 <= status < 300 for status in statuses), statuses
