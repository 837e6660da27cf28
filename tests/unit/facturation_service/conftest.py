"""Facturation app on a real migrated database, Stripe's HTTP answered by the fake through respx,
and auth handed to ``create_app`` as an in-memory double of ``AuthApi``."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import respx
import stripe
from litestar import Litestar
from litestar.testing import AsyncTestClient

from facturation_service.app import create_app
from facturation_service.auth_client import AuthUser
from facturation_service.settings import FacturationSettings
from shared import (
    INTERNAL_TOKEN_HEADER,
    ConflictError,
    Database,
    NotFoundError,
    ServiceUnavailableError,
)
from tests.support.databases import migrated_database
from tests.support.fake_stripe import FakeStripe
from tests.support.webhook_app import webhook_app_client

MIGRATIONS = Path(__file__).resolve().parents[3] / "facturation_service" / "migrations"
STRIPE_BASE = "https://stripe.test"
INTERNAL_TOKEN = "unit-internal-token"
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
def settings(facturation_url: str) -> FacturationSettings:
    return FacturationSettings(
        facturation_database_url=facturation_url,
        internal_token=INTERNAL_TOKEN,
        stripe_secret_key="sk_test_unit",
        stripe_api_base=STRIPE_BASE,
        stripe_max_network_retries=2,
        stripe_timeout_seconds=2.0,
        checkout_return_origins=[RETURN_ORIGIN],
    )


@pytest.fixture
def fake_stripe() -> FakeStripe:
    return FakeStripe()


@pytest.fixture
def fake_auth() -> FakeAuth:
    return FakeAuth()


@pytest.fixture
def stripe_http(fake_stripe: FakeStripe) -> Iterator[respx.MockRouter]:
    """Every request to Stripe goes to the fake unless a test adds a more specific route first."""
    with respx.mock(base_url=STRIPE_BASE, assert_all_called=False) as router:
        router.route(name="fake").mock(side_effect=fake_stripe.respx_handler)
        yield router


@pytest.fixture
def app(settings: FacturationSettings, fake_auth: FakeAuth) -> Litestar:
    return create_app(settings, auth=fake_auth)


@asynccontextmanager
async def running(app: Litestar) -> AsyncIterator[httpx.AsyncClient]:
    """The app with its lifespan, on this event loop. Unlike Litestar's test client, which sends
    one request at a time, concurrent requests really run concurrently here."""
    started, stop = asyncio.Event(), asyncio.Event()

    async def lifespan() -> None:
        # Entered and left in one task: the app's task groups insist on it.
        async with app.lifespan():
            started.set()
            await stop.wait()

    task = asyncio.create_task(lifespan())
    waiter = asyncio.create_task(started.wait())
    await asyncio.wait([task, waiter], return_when="FIRST_COMPLETED")
    waiter.cancel()
    if task.done():
        task.result()
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),  # type: ignore[arg-type]
            base_url="http://facturation.test",
            headers={INTERNAL_TOKEN_HEADER: INTERNAL_TOKEN},
        ) as http:
            yield http
    finally:
        stop.set()
        await task


@pytest.fixture
async def client(app: Litestar, stripe_http: respx.MockRouter) -> AsyncIterator[httpx.AsyncClient]:
    async with running(app) as http:
        yield http


@pytest.fixture
async def webhook_client(facturation_url: str) -> AsyncIterator[AsyncTestClient[Litestar]]:
    """The app under ``webhook_settings``: signing secrets and a fast worker."""
    async with webhook_app_client(facturation_url) as test_client:
        yield test_client


def as_user(user_id: str) -> dict[str, str]:
    return {"X-User-Id": user_id, "X-User-Email": f"{user_id[:8]}@example.com"}
