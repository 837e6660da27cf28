"""``POST /internal/v1/orders/{id}/refunds`` against the sandbox as Stripe: the refund is made
with the order's payment intent and a key derived from the caller's, stored by its ``re_`` id,
and every bad request is refused with nothing half-made."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import msgspec
import pytest
import stripe
from litestar import Litestar
from sqlalchemy import func, select

from facturation_service.app import create_app
from facturation_service.fulfilment import fulfil
from facturation_service.models import Order, RefundRequest
from facturation_service.settings import FacturationSettings
from shared import PROBLEM_MEDIA_TYPE, Database
from stripe_sandbox import SandboxSettings
from stripe_sandbox import create_app as create_sandbox
from tests.unit.facturation_service.conftest import FakeAuth, running
from tests.unit.facturation_service.orders_support import (
    PRODUCTS,
    entitlements_of,
    get_order,
    store_order,
)
from tests.unit.stripe_sandbox.conftest import serving
from tests.unit.stripe_sandbox.helpers import create_customer, create_session, pay

SANDBOX_KEY = "sk_test_unit_refunds"


@dataclass
class Sandbox:
    url: str
    stripe: stripe.StripeClient

    async def paid_intent(self) -> str:
        """A 3000-cent payment made through a sandbox checkout; its payment intent."""
        customer = await create_customer(self.stripe)
        session = await create_session(self.stripe, customer.id)
        paid = await pay(self.url, session)
        assert paid.status_code == 200
        return str(paid.json()["payment_intent"])


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    async with serving(create_sandbox(SandboxSettings(sandbox_webhook_url=""))) as url:
        http_client = stripe.HTTPXClient()
        yield Sandbox(
            url,
            stripe.StripeClient(SANDBOX_KEY, http_client=http_client, base_addresses={"api": url}),
        )
        await http_client.close_async()  # type: ignore[no-untyped-call]


@pytest.fixture
async def ops(
    settings: FacturationSettings, sandbox: Sandbox, fake_auth: FakeAuth
) -> AsyncIterator[httpx.AsyncClient]:
    """The service with the internal credential (as an operator calls it), Stripe = sandbox."""
    app: Litestar = create_app(
        msgspec.structs.replace(
            settings, stripe_api_base=sandbox.url, stripe_secret_key=SANDBOX_KEY
        ),
        auth=fake_auth,
    )
    async with running(app) as http:
        yield http


async def paid_order(db: Database, sandbox: Sandbox) -> str:
    return await store_order(
        db, status="paid", amount_total=3000, payment_intent=await sandbox.paid_intent()
    )


async def post_refund(
    http: httpx.AsyncClient, order_id: str, key: str | None, body: dict[str, object] | None = None
) -> httpx.Response:
    headers = {"Idempotency-Key": key} if key is not None else {}
    return await http.post(
        f"/internal/v1/orders/{order_id}/refunds", json=body or {}, headers=headers
    )


async def stored_keys(db: Database) -> int:
    async with db.sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(RefundRequest)) or 0)


async def test_a_partial_refund_is_made_in_stripe_and_stored_on_the_order(
    ops: httpx.AsyncClient, db: Database, sandbox: Sandbox
) -> None:
    order_id = await paid_order(db, sandbox)

    response = await post_refund(ops, order_id, "key-partial-1", {"amount": 1000})

    assert response.status_code == 201
    body = response.json()
    assert body["id"].startswith("re_")
    assert (body["order_id"], body["amount"], body["status"]) == (order_id, 1000, "succeeded")
    made = await sandbox.stripe.v1.refunds.retrieve_async(body["id"])
    order = await get_order(db, order_id)
    assert made.payment_intent == order.stripe_payment_intent_id
    assert made.metadata is not None
    assert made.metadata["order_id"] == order_id
    assert (order.status, order.amount_refunded) == ("partially_refunded", 1000)


async def test_without_an_amount_the_rest_is_refunded_and_access_revoked(
    ops: httpx.AsyncClient, db: Database, sandbox: Sandbox
) -> None:
    order_id = await paid_order(db, sandbox)
    async with db.sessionmaker() as session, session.begin():
        await fulfil(session, Order.id == order_id)

    first = await post_refund(ops, order_id, "key-a", {"amount": 1200})
    rest = await post_refund(ops, order_id, "key-b")

    assert (first.status_code, rest.status_code) == (201, 201)
    assert rest.json()["amount"] == 1800
    order = await get_order(db, order_id)
    assert (order.status, order.amount_refunded) == ("refunded", 3000)
    assert await entitlements_of(db, order_id) == dict.fromkeys(PRODUCTS, "revoked")


async def test_the_same_key_and_body_is_the_same_refund_made_once(
    ops: httpx.AsyncClient, db: Database, sandbox: Sandbox
) -> None:
    order_id = await paid_order(db, sandbox)

    first = await post_refund(ops, order_id, "key-replay", {"amount": 500})
    again = await post_refund(ops, order_id, "key-replay", {"amount": 500})

    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json()
    refunds = await sandbox.stripe.v1.refunds.list_async()
    assert len(refunds.data) == 1
    assert (await get_order(db, order_id)).amount_refunded == 500


async def test_the_same_key_with_another_body_is_a_conflict(
    ops: httpx.AsyncClient, db: Database, sandbox: Sandbox
) -> None:
    order_id = await paid_order(db, sandbox)
    await post_refund(ops, order_id, "key-reused", {"amount": 500})

    reused = await post_refund(ops, order_id, "key-reused", {"amount": 700})

    assert reused.status_code == 409
    assert reused.headers["content-type"] == PROBLEM_MEDIA_TYPE
    assert (await get_order(db, order_id)).amount_refunded == 500


async def test_a_request_without_an_idempotency_key_is_refused(
    ops: httpx.AsyncClient, db: Database, sandbox: Sandbox
) -> None:
    order_id = await paid_order(db, sandbox)

    response = await post_refund(ops, order_id, None, {"amount": 500})

    assert response.status_code == 400
    assert "Idempotency-Key" in response.json()["detail"]
    assert await stored_keys(db) == 0


@pytest.mark.parametrize("amount", [0, -5, 3001])
async def test_an_amount_not_positive_or_above_what_is_left_is_unprocessable(
    ops: httpx.AsyncClient, db: Database, sandbox: Sandbox, amount: int
) -> None:
    order_id = await paid_order(db, sandbox)

    response = await post_refund(ops, order_id, f"key-{amount}", {"amount": amount})

    assert response.status_code == 422
    assert await stored_keys(db) == 0
    assert (await get_order(db, order_id)).status == "paid"


async def test_more_than_what_is_left_after_a_partial_refund_is_unprocessable(
    ops: httpx.AsyncClient, db: Database, sandbox: Sandbox
) -> None:
    order_id = await paid_order(db, sandbox)
    await post_refund(ops, order_id, "key-first", {"amount": 2500})

    response = await post_refund(ops, order_id, "key-second", {"amount": 501})

    assert response.status_code == 422
    assert response.json()["refundable"] == 500


async def test_an_unknown_order_is_not_found(ops: httpx.AsyncClient) -> None:
    response = await post_refund(ops, "ord_missing", "key-1", {"amount": 1})

    assert response.status_code == 404


@pytest.mark.parametrize("status", ["pending_payment", "expired", "complete", "refunded"])
async def test_an_order_that_was_never_paid_or_is_free_or_spent_is_a_conflict(
    ops: httpx.AsyncClient, db: Database, status: str
) -> None:
    order_id = await store_order(db, status=status, payment_intent="pi_NotPaid0001")

    response = await post_refund(ops, order_id, "key-1")

    assert response.status_code == 409
    assert await stored_keys(db) == 0


async def test_a_refund_stripe_refuses_leaves_nothing_and_the_key_can_be_used_again(
    ops: httpx.AsyncClient, db: Database, sandbox: Sandbox
) -> None:
    order_id = await paid_order(db, sandbox)
    order = await get_order(db, order_id)
    # "The Dashboard" refunds everything first: our table does not know yet, Stripe refuses.
    await sandbox.stripe.v1.refunds.create_async(
        {"payment_intent": order.stripe_payment_intent_id or ""}
    )

    refused = await post_refund(ops, order_id, "key-late", {"amount": 100})

    assert refused.status_code == 422
    assert refused.json()["stripe_code"] == "charge_already_refunded"
    assert await stored_keys(db) == 0


async def test_the_route_needs_the_internal_credential(
    ops: httpx.AsyncClient, db: Database, sandbox: Sandbox
) -> None:
    order_id = await paid_order(db, sandbox)

    response = await ops.post(
        f"/internal/v1/orders/{order_id}/refunds",
        json={"amount": 100},
        headers={"Idempotency-Key": "key-1", "X-Internal-Token": "wrong"},
    )

    assert response.status_code == 401
    assert (await get_order(db, order_id)).amount_refunded == 0


@pytest.mark.parametrize(
    ("body", "key"),
    [
        (b"not json", "key-1"),
        (b'{"amount": "ten"}', "key-1"),
        (b'{"amount": 100, "currency": "usd"}', "key-1"),
        (b'{"reason": "because"}', "key-1"),
        (b"{}", "k" * 201),
    ],
    ids=["not-json", "amount-not-integer", "unknown-field", "unknown-reason", "key-too-long"],
)
async def test_a_malformed_request_is_a_bad_request_and_changes_nothing(
    ops: httpx.AsyncClient, db: Database, sandbox: Sandbox, body: bytes, key: str
) -> None:
    order_id = await paid_order(db, sandbox)

    response = await ops.post(
        f"/internal/v1/orders/{order_id}/refunds",
        content=body,
        headers={"Idempotency-Key": key, "Content-Type": "application/json"},
    )

    assert response.status_code == 400
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    assert await stored_keys(db) == 0
    assert (await get_order(db, order_id)).amount_refunded == 0
