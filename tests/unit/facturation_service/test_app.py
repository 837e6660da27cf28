"""``create_app``, the composition root: the clients it is handed are the ones every route uses,
and their owner, not the app, closes them; its start opens the database connections a first
burst would need."""

from __future__ import annotations

import logging

import msgspec
import pytest
from litestar import Litestar

from facturation_service.app import create_app, open_database_connections
from facturation_service.settings import FacturationSettings
from shared import Database
from tests.support.databases import using_postgres
from tests.support.sandbox import InProcessSandbox
from tests.unit.facturation_service.conftest import FakeAuth, as_user, running


async def test_the_stripe_client_and_auth_handed_to_create_app_are_used_and_left_open(
    settings: FacturationSettings, fake_auth: FakeAuth, sandbox: InProcessSandbox
) -> None:
    stripe_api = sandbox.stripe_api("sk_test_handed_in")
    user_id = fake_auth.add_user()
    try:
        async with running(create_app(settings, stripe=stripe_api, auth=fake_auth)) as client:
            response = await client.post("/billing/customer", headers=as_user(user_id))
        # Still usable once the app has stopped: the app did not close it.
        later = await stripe_api.create_customer(
            user_id="someone-else", email="later@example.com", name=None, idempotency_key="later"
        )
    finally:
        await stripe_api.close()

    assert response.status_code == 201
    authorizations = [request.headers["authorization"] for request in sandbox.requests]
    assert authorizations == ["Bearer sk_test_handed_in"] * 2
    assert fake_auth.users[user_id].user_stripe_id == response.json()["user_stripe_id"]
    assert later.id in sandbox.state.customers
    assert not fake_auth.closed


async def test_the_order_pool_and_the_main_pool_are_open_before_the_first_request(
    settings: FacturationSettings, fake_auth: FakeAuth, sandbox: InProcessSandbox
) -> None:
    settings = msgspec.structs.replace(settings, facturation_database_connections_at_start=7)
    app: Litestar = create_app(settings, stripe=sandbox.stripe_api("sk_test_pools"), auth=fake_auth)
    database: Database = app.state.database
    async with running(app):
        main_pool = database.engine.sync_engine.pool
        opened = {
            "order pool": database.row_pool_connections,
            "main pool": main_pool.checkedin() + main_pool.checkedout(),  # type: ignore[attr-defined]
        }
        # Never more than a pool keeps (the order pool keeps 10).
        capped = await database.open_connections(50)
        order_pool_after = database.row_pool_connections
    if using_postgres():
        # The worker and the periodic jobs may hold more of the main pool's by now.
        assert opened["order pool"] == 7
        assert opened["main pool"] >= 7
        assert order_pool_after == Database.ROW_POOL_SIZE == 10
        assert capped == main_pool.size()  # type: ignore[attr-defined]
    else:
        # SQLite opens a file per connection: nothing to open ahead.
        assert capped == 0
        assert opened["order pool"] == order_pool_after == 0


async def test_a_database_that_cannot_be_reached_at_start_does_not_stop_the_service(
    caplog: pytest.LogCaptureFixture,
) -> None:
    unreachable = Database("postgresql://postgres@127.0.0.1:1/facturation")
    try:
        with caplog.at_level(logging.WARNING, logger="facturation_service.app"):
            await open_database_connections(unreachable, 3)
    finally:
        await unreachable.dispose()

    assert "database connections not opened at start-up" in caplog.text
