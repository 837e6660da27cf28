"""``create_app``, the composition root: the clients it is handed are the ones every route uses,
and their owner, not the app, closes them."""

from __future__ import annotations

from facturation_service.app import create_app
from facturation_service.settings import FacturationSettings
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
