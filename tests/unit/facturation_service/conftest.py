"""Facturation app on a real migrated database, Stripe's HTTP answered by the Stripe sandbox
mounted in-process (``sandbox``: its request log and scripted faults), and auth handed to
``create_app`` as an in-memory double of ``AuthApi``."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import stripe
from litestar import Litestar
from litestar.testing import AsyncTestClient

from facturation_service.app import create_app
from facturation_service.auth_client import AuthUser
from facturation_service.journal import JournalWriter
from facturation_service.settings import FacturationSettings
from facturation_service.stripe_api import StripeApi
from shared import (
    INTERNAL_TOKEN_HEADER,
    ConflictError,
    Database,
    NotFoundError,
    ServiceUnavailableError,
)
from tests.support.databases import migrated_database
from tests.support.lifespan import app_lifespan
from tests.support.sandbox import SANDBOX_URL, InProcessSandbox
from tests.support.webhook_app import webhook_app_client

MIGRATIONS = Path(__file__).resolve().parents[3] / "facturation_service" / "migrations"
INTERNAL_TOKEN = "unit-internal-token"
NewWriter = Callable[..., JournalWriter]
RETURN_ORIGIN = "https://shop.example"


@dataclass
class FakeAuth:
    users: dict[str, AuthUser] = field(default_factory=dict)
    store_calls: int = 0
    fail_stores: int = 0
    """How many of the next ``store_stripe_customer`` calls fail as if auth were down."""
    closed: bool = False

    def add_user(self, email: str | None = None) -> str:
        user_id = str(uuid.uuid4())
        self.users[user_id] = AuthUser(
            id=user_id, email=email or f"{user_id[:8]}@example.com", name="Ada Lovelace"
        )
        return user_id

    async def get_user(self, user_id: str) -> AuthUser:
        if user_id not in self.users:
            raise NotFoundError("This user does not exist.")
        return self.users[user_id]

    async def store_stripe_customer(self, user_id: str, user_stripe_id: str) -> AuthUser:
        self.store_calls += 1
        if self.fail_stores:
            self.fail_stores -= 1
            raise ServiceUnavailableError("The auth service cannot be reached.")
        user = await self.get_user(user_id)
        if user.user_stripe_id not in (None, user_stripe_id):
            raise ConflictError("Auth already holds a different Stripe customer for this user.")
        self.users[user_id] = AuthUser(
            id=user.id, email=user.email, name=user.name, user_stripe_id=user_stripe_id
        )
        return self.users[user_id]

    async def close(self) -> None:
        self.closed = True


@pytest.fixture(autouse=True)
def fast_stripe_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    # Stripe's SDK waits at least 0.5 s before a retry; the tests only care that it retries.
    monkeypatch.setattr(stripe.HTTPClient, "INITIAL_DELAY", 0.01)


@pytest.fixture
async def facturation_url(tmp_path: Path) -> AsyncIterator[str]:
    async with migrated_database("facturation", MIGRATIONS, tmp_path) as url:
        yield url


@pytest.fixture
async def db(facturation_url: str) -> AsyncIterator[Database]:
    """The test's own connection to the service's database (the app runs on another loop)."""
    database = Database(facturation_url)
    yield database
    await database.dispose()


@pytest.fixture
async def new_writer(db: Database) -> AsyncIterator[NewWriter]:
    """Builds journal writers on ``db``; drained at the end, as the app does at shutdown (a
    flusher lingers with its connection after its last batch)."""
    writers: list[JournalWriter] = []

    def new(**options: Any) -> JournalWriter:
        writers.append(JournalWriter(db.engine, **options))
        return writers[-1]

    yield new
    for writer in writers:
        await writer.drain()


@pytest.fixture
def settings(facturation_url: str) -> FacturationSettings:
    return FacturationSettings(
        facturation_database_url=facturation_url,
        internal_token=INTERNAL_TOKEN,
        stripe_secret_key="sk_test_unit",
        stripe_api_base=SANDBOX_URL,
        stripe_max_network_retries=2,
        # Short, so that a scripted ``timeout`` fault costs the test three times this.
        stripe_timeout_seconds=1.0,
        checkout_return_origins=[RETURN_ORIGIN],
        # Each test starts its own app: opening 20 PostgreSQL connections at each start cost
        # ~0.2 s a test. test_app.py opens them and checks they are there.
        facturation_database_connections_at_start=0,
    )


@pytest.fixture
async def sandbox() -> AsyncIterator[InProcessSandbox]:
    """The Stripe sandbox, in-process: ``sandbox.requests`` (what reached Stripe, in order),
    ``sandbox.faults.add(method, path, kind, count=...)`` (what the next calls suffer)."""
    async with InProcessSandbox().running() as running_sandbox:
        yield running_sandbox


def sandbox_stripe_api(sandbox: InProcessSandbox, settings: FacturationSettings) -> StripeApi:
    """The service's Stripe client as ``settings`` configure it, sending to ``sandbox``."""
    return sandbox.stripe_api(
        settings.stripe_api_key,
        timeout_seconds=settings.stripe_timeout_seconds,
        max_network_retries=settings.stripe_max_network_retries,
    )


@pytest.fixture
async def stripe_api(
    sandbox: InProcessSandbox, settings: FacturationSettings
) -> AsyncIterator[StripeApi]:
    """The ``StripeApi`` over the sandbox that the app fixture is handed; closed after the test."""
    api = sandbox_stripe_api(sandbox, settings)
    yield api
    await api.close()


@pytest.fixture
def fake_auth() -> FakeAuth:
    return FakeAuth()


@pytest.fixture
def app(settings: FacturationSettings, fake_auth: FakeAuth, stripe_api: StripeApi) -> Litestar:
    return create_app(settings, stripe=stripe_api, auth=fake_auth)


@asynccontextmanager
async def running(app: Litestar) -> AsyncIterator[httpx.AsyncClient]:
    """The app with its lifespan, on this event loop. Unlike Litestar's test client, which sends
    one request at a time, concurrent requests really run concurrently here."""
    async with (
        app_lifespan(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),  # type: ignore[arg-type]
            base_url="http://facturation.test",
            headers={INTERNAL_TOKEN_HEADER: INTERNAL_TOKEN},
        ) as http,
    ):
        yield http


@pytest.fixture
async def client(app: Litestar) -> AsyncIterator[httpx.AsyncClient]:
    async with running(app) as http:
        yield http


@pytest.fixture
async def webhook_client(facturation_url: str) -> AsyncIterator[AsyncTestClient[Litestar]]:
    """The app under ``webhook_settings``: signing secrets and a fast worker."""
    async with webhook_app_client(facturation_url) as test_client:
        yield test_client


def as_user(user_id: str) -> dict[str, str]:
    return {"X-User-Id": user_id, "X-User-Email": f"{user_id[:8]}@example.com"}
