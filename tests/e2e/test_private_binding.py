"""auth_service and facturation_service started as the Kubernetes manifests start them (the
command line of deploy/k8s, only the port swapped for a free one): they listen on every
interface, so the network alone does not protect them — the internal credential does. Without it,
or with a wrong one, every private route answers 401 problem+json; health answers regardless;
the gateway's credential is accepted."""

from __future__ import annotations

import asyncio
import os
import secrets
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from shared import INTERNAL_TOKEN_HEADER, PROBLEM_MEDIA_TYPE
from tests.deploy.manifests import k8s_objects, option, pod_spec
from tests.support.databases import fresh_database
from tests.support.processes import ROOT, ServiceProcess, free_port
from tests.support.stack import signing_key_pem

ALL_INTERFACES = "0.0.0.0"  # noqa: S104 - what the manifests bind, checked below
DEPLOYMENTS = {"auth_service": "auth", "facturation_service": "facturation"}
JOBS = {"auth_service": "auth-migrate", "facturation_service": "facturation-migrate"}
WRONG_TOKEN = "not-the-internal-token"

# Private routes of each service (method, path, JSON body); ids are random, so a request that got
# past the guard would be a 404 or 422, never the 401 asserted here.
SOME_USER = str(uuid.uuid4())
AUTH_PRIVATE_ROUTES = [
    ("GET", "/internal/v1/tokens/check", None),
    ("GET", f"/internal/v1/users/{SOME_USER}", None),
    ("PUT", f"/internal/v1/users/{SOME_USER}/stripe-customer", {"user_stripe_id": "cus_X"}),
    ("POST", "/auth/register", {"email": "x@example.com", "password": "pw-123456789", "name": "X"}),
    ("POST", "/auth/login", {"email": "x@example.com", "password": "pw-123456789"}),
    ("GET", "/users/me", None),
]
FACTURATION_PRIVATE_ROUTES: list[tuple[str, str, object]] = [
    ("GET", "/internal/v1/webhook-events", None),
    ("POST", f"/internal/v1/webhook-events/evt_{uuid.uuid4().hex}/replay", None),
    ("GET", "/products", None),
    ("POST", "/basket/validate", {"items": []}),
    ("POST", "/billing/customer", None),
    ("POST", "/billing/checkout-sessions", {"items": []}),
    ("GET", "/billing/invoices", None),
    ("PUT", "/users/me/stripe-customer", {"user_stripe_id": "cus_X"}),
    ("POST", "/webhooks/stripe", {"id": "evt_X", "object": "event"}),
]
PRIVATE_ROUTES = [("auth_service", *route) for route in AUTH_PRIVATE_ROUTES] + [
    ("facturation_service", *route) for route in FACTURATION_PRIVATE_ROUTES
]


def manifest_command(module: str) -> list[str]:
    (container,) = pod_spec(k8s_objects("Deployment")[DEPLOYMENTS[module]])["containers"]
    command: list[str] = container["command"]
    return command


def serve_args(module: str, port: int) -> tuple[str, ...]:
    """The manifest's arguments after ``serve``, with its fixed port swapped for ``port``.

    ServiceProcess puts its own ``--host 127.0.0.1 --port N`` first; argparse keeps the last
    value, so the manifest's ``--host`` is the one in force.
    """
    command = manifest_command(module)
    args = command[command.index("serve") + 1 :]
    at = args.index("--port")
    return (*args[: at + 1], str(port), *args[at + 2 :])


def listening_addresses(port: int) -> set[str]:
    """IPv4 addresses with a listening TCP socket on ``port``, from /proc/net/tcp."""
    found = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        address, hex_port = local.split(":")
        if state == "0A" and int(hex_port, 16) == port:  # 0A: TCP_LISTEN
            found.add(".".join(str(b) for b in reversed(bytes.fromhex(address))))
    return found


@dataclass
class PrivateServices:
    auth: ServiceProcess
    facturation: ServiceProcess
    internal_token: str

    def of(self, module: str) -> ServiceProcess:
        return self.auth if module == "auth_service" else self.facturation


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def services(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[PrivateServices]:
    tmp = tmp_path_factory.mktemp("private-binding")
    token = secrets.token_urlsafe(24)
    common = {"INTERNAL_TOKEN": token, "LOG_LEVEL": "WARNING"}
    started: list[ServiceProcess] = []
    async with (
        fresh_database("auth", tmp) as auth_url,
        fresh_database("facturation", tmp) as facturation_url,
    ):
        try:
            auth_port = free_port()
            auth = ServiceProcess(
                "auth_service",
                {**common, "AUTH_DATABASE_URL": auth_url, "JWT_PRIVATE_KEY": signing_key_pem()},
                tmp,
                port=auth_port,
                args=serve_args("auth_service", auth_port),
            )
            await auth.migrate()
            started.append(auth)
            await asyncio.to_thread(auth.start)

            facturation_port = free_port()
            facturation = ServiceProcess(
                "facturation_service",
                {
                    **common,
                    "FACTURATION_DATABASE_URL": facturation_url,
                    "AUTH_URL": auth.url,
                    # Nothing here reaches Stripe: every request stops at the guard or earlier.
                    "STRIPE_API_BASE": f"http://127.0.0.1:{free_port()}",
                    "STRIPE_WEBHOOK_SECRET": "whsec_" + secrets.token_hex(16),
                },
                tmp,
                port=facturation_port,
                args=serve_args("facturation_service", facturation_port),
            )
            await facturation.migrate()
            started.append(facturation)
            await asyncio.to_thread(facturation.start)
            yield PrivateServices(auth, facturation, token)
        finally:
            for process in reversed(started):
                await asyncio.to_thread(process.stop)


@pytest.mark.parametrize("module", DEPLOYMENTS)
async def test_private_service_listens_on_every_interface_as_the_manifest_binds_it(
    services: PrivateServices, module: str
) -> None:
    process = services.of(module)
    assert process.process is not None
    assert option(manifest_command(module), "--host") == ALL_INTERFACES
    assert listening_addresses(process.port) == {ALL_INTERFACES}


@pytest.mark.parametrize("module", DEPLOYMENTS)
@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
async def test_probes_answer_without_the_internal_credential(
    services: PrivateServices, module: str, path: str
) -> None:
    async with httpx.AsyncClient(base_url=services.of(module).url, timeout=10) as http:
        response = await http.get(path)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("credential", [None, "", WRONG_TOKEN], ids=["absent", "empty", "wrong"])
@pytest.mark.parametrize(
    ("module", "method", "path", "body"),
    PRIVATE_ROUTES,
    ids=[f"{m}:{method} {path}" for m, method, path, _ in PRIVATE_ROUTES],
)
async def test_private_route_refuses_a_request_without_the_gateways_credential(
    services: PrivateServices,
    module: str,
    method: str,
    path: str,
    body: object,
    credential: str | None,
) -> None:
    headers = {} if credential is None else {INTERNAL_TOKEN_HEADER: credential}
    async with httpx.AsyncClient(base_url=services.of(module).url, timeout=10) as http:
        response = await http.request(method, path, json=body, headers=headers)
    assert response.status_code == 401, response.text
    assert response.headers["content-type"].startswith(PROBLEM_MEDIA_TYPE)
    problem = response.json()
    assert problem["status"] == 401
    assert "internal credential" in problem["detail"]


async def test_auth_accepts_the_credential_and_a_refused_request_changed_nothing(
    services: PrivateServices,
) -> None:
    email = f"binding-{uuid.uuid4().hex[:10]}@example.com"
    user = {"email": email, "password": "correct-horse-battery", "name": "Binding"}
    credential = {INTERNAL_TOKEN_HEADER: services.internal_token}
    async with httpx.AsyncClient(base_url=services.auth.url, timeout=10) as http:
        refused = await http.post("/auth/register", json=user)
        assert refused.status_code == 401
        # Had the refused call created the user, this would be a 409.
        registered = await http.post("/auth/register", json=user, headers=credential)
        assert registered.status_code == 201, registered.text
        user_id = registered.json()["id"]
        fetched = await http.get(f"/internal/v1/users/{user_id}", headers=credential)
    assert fetched.status_code == 200, fetched.text
    assert fetched.json()["email"] == email


async def test_facturation_accepts_the_credential(services: PrivateServices) -> None:
    credential = {INTERNAL_TOKEN_HEADER: services.internal_token}
    async with httpx.AsyncClient(base_url=services.facturation.url, timeout=10) as http:
        journal = await http.get("/internal/v1/webhook-events", headers=credential)
        products = await http.get("/products", headers=credential)
    assert journal.status_code == 200, journal.text
    assert products.status_code == 200, products.text


@pytest.mark.parametrize("module", JOBS)
async def test_migrations_run_with_only_the_environment_the_job_gives_them(
    tmp_path: Path, module: str
) -> None:
    (container,) = pod_spec(k8s_objects("Job")[JOBS[module]])["containers"]
    given = [entry["name"] for entry in container["env"]]
    async with fresh_database(JOBS[module].replace("-", "_"), tmp_path) as url:
        env = {name: url if name.endswith("DATABASE_URL") else "job-value" for name in given}
        # Nothing inherited from this test process beyond what starts Python.
        env |= {key: os.environ[key] for key in ("PATH", "HOME") if key in os.environ}
        result = await asyncio.create_subprocess_exec(
            sys.executable,
            *container["command"][1:],
            env=env,
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        output, _ = await asyncio.wait_for(result.communicate(), timeout=120)
    assert result.returncode == 0, output.decode(errors="replace")
