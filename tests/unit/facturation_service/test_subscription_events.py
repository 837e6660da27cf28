"""``customer.subscription.*`` snapshots: newest wins whatever the order, duplicates and
concurrency; the slot and the plan's entitlement follow the stored subscription; a paid
subscription invoice extends the entitlement; the subscription's order grants nothing itself."""

from __future__ import annotations

import copy
import itertools
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from facturation_service.models import Entitlement, StripeCustomer, Subscription, SubscriptionSlot
from shared import Database
from tests.support import stripe_events
from tests.unit.facturation_service.orders_support import (
    USER_ID,
    apply,
    apply_concurrently,
    get_order,
    store_order,
)

PLAN = "plus-monthly"
T0 = int(time.time()) - 600
PERIOD_1 = (T0, T0 + 30 * 86400)
PERIOD_2 = (PERIOD_1[1], PERIOD_1[1] + 30 * 86400)


def _metadata(order_id: str = "ord_subscription") -> dict[str, str]:
    return {"user_id": USER_ID, "order_id": order_id, "product_id": PLAN}


def sub_event(
    type_: str,
    subscription_id: str,
    *,
    status: str,
    created: int,
    period: tuple[int, int] = PERIOD_1,
    metadata: dict[str, str] | None = None,
    **fields: Any,
) -> dict[str, Any]:
    snapshot = stripe_events.subscription(
        subscription_id=subscription_id,
        status=status,
        metadata=_metadata() if metadata is None else metadata,
        period_start=period[0],
        period_end=period[1],
        created=T0,
        **fields,
    )
    return stripe_events.event(type_, snapshot, created=created)


def lifecycle(subscription_id: str) -> list[dict[str, Any]]:
    """created (incomplete) → updated (active) → deleted (canceled), one second apart."""
    ended = T0 + 2
    return [
        sub_event(
            "customer.subscription.created", subscription_id, status="incomplete", created=T0
        ),
        sub_event(
            "customer.subscription.updated", subscription_id, status="active", created=T0 + 1
        ),
        sub_event(
            "customer.subscription.deleted",
            subscription_id,
            status="canceled",
            created=ended,
            canceled_at=ended,
            ended_at=ended,
        ),
    ]


def redelivered(event: dict[str, Any]) -> dict[str, Any]:
    """The same snapshot under another event id (Stripe resends a state as a new event)."""
    again = copy.deepcopy(event)
    again["id"] = f"evt_{uuid.uuid4().hex[:24]}"
    return again


async def stored(db: Database, subscription_id: str) -> dict[str, Any]:
    async with db.sessionmaker() as session:
        row = await session.get(Subscription, subscription_id)
        assert row is not None
        entitlements = (
            await session.scalars(
                select(Entitlement).where(
                    Entitlement.source == "subscription", Entitlement.source_id == subscription_id
                )
            )
        ).all()
        slot = await session.get(SubscriptionSlot, USER_ID)
    return {
        "status": row.status,
        "user_id": row.user_id,
        "product_id": row.product_id,
        "current_period_end": row.current_period_end,
        "canceled_at": row.canceled_at,
        "entitlements": sorted((e.product_id, e.status, _unix(e.ends_at)) for e in entitlements),
        "slot": None if slot is None else slot.subscription_id,
    }


def _unix(value: datetime | None) -> int | None:
    return None if value is None else int(value.replace(tzinfo=value.tzinfo or UTC).timestamp())


async def test_every_order_of_created_updated_deleted_with_duplicates_ends_canceled_and_expired(
    db: Database,
) -> None:
    finals = []
    for order in itertools.permutations(range(3)):
        subscription_id = f"sub_{uuid.uuid4().hex[:14]}"
        events = lifecycle(subscription_id)
        sequence = [events[i] for i in order]
        await apply(db, *sequence, *[redelivered(event) for event in sequence], sequence[0])
        finals.append(await stored(db, subscription_id))

    assert finals == [finals[0]] * 6
    assert finals[0] == {
        "status": "canceled",
        "user_id": USER_ID,
        "product_id": PLAN,
        "current_period_end": PERIOD_1[1],
        "canceled_at": T0 + 2,
        "entitlements": [(PLAN, "expired", T0 + 2)],
        "slot": None,
    }


async def test_every_order_of_a_renewal_that_fails_ends_past_due_suspended_holding_the_slot(
    db: Database,
) -> None:
    finals = []
    for order in itertools.permutations(range(3)):
        subscription_id = f"sub_{uuid.uuid4().hex[:14]}"
        events = [
            sub_event(
                "customer.subscription.created", subscription_id, status="incomplete", created=T0
            ),
            sub_event(
                "customer.subscription.updated", subscription_id, status="active", created=T0 + 1
            ),
            sub_event(
                "customer.subscription.updated",
                subscription_id,
                status="past_due",
                created=T0 + 5,
                period=PERIOD_2,
            ),
        ]
        await apply(db, *[events[i] for i in order], redelivered(events[order[0]]))
        result = await stored(db, subscription_id)
        result.pop("slot")
        finals.append(result)
        async with db.sessionmaker() as session, session.begin():
            slot = await session.get(SubscriptionSlot, USER_ID)
            assert slot is not None
            assert slot.subscription_id == subscription_id
            await session.delete(slot)  # the next permutation is another subscription

    assert finals == [finals[0]] * 6
    assert finals[0]["status"] == "past_due"
    assert finals[0]["entitlements"] == [(PLAN, "suspended", PERIOD_2[1])]


async def test_concurrent_deliveries_of_the_lifecycle_end_in_the_same_row(db: Database) -> None:
    subscription_id = f"sub_{uuid.uuid4().hex[:14]}"
    events = lifecycle(subscription_id)

    await apply_concurrently(db, *events, *[redelivered(event) for event in events])

    result = await stored(db, subscription_id)
    assert (result["status"], result["entitlements"], result["slot"]) == (
        "canceled",
        [(PLAN, "expired", T0 + 2)],
        None,
    )


async def test_within_one_second_the_status_further_along_wins_in_both_orders(
    db: Database,
) -> None:
    for first, second in (("incomplete", "active"), ("active", "incomplete")):
        subscription_id = f"sub_{uuid.uuid4().hex[:14]}"
        await apply(
            db,
            sub_event("customer.subscription.updated", subscription_id, status=first, created=T0),
            sub_event("customer.subscription.updated", subscription_id, status=second, created=T0),
        )
        assert (await stored(db, subscription_id))["status"] == "active"


async def test_an_active_subscription_grants_its_plan_until_the_period_end_and_holds_the_slot(
    db: Database,
) -> None:
    subscription_id = f"sub_{uuid.uuid4().hex[:14]}"

    await apply(db, *lifecycle(subscription_id)[:2])

    result = await stored(db, subscription_id)
    assert result["entitlements"] == [(PLAN, "active", PERIOD_1[1])]
    assert result["slot"] == subscription_id


async def test_an_incomplete_subscription_holds_the_slot_but_grants_nothing(db: Database) -> None:
    subscription_id = f"sub_{uuid.uuid4().hex[:14]}"

    await apply(db, lifecycle(subscription_id)[0])

    result = await stored(db, subscription_id)
    assert (result["entitlements"], result["slot"]) == ([], subscription_id)


async def test_past_due_suspends_and_a_paid_renewal_makes_it_active_again_until_the_new_end(
    db: Database,
) -> None:
    subscription_id = f"sub_{uuid.uuid4().hex[:14]}"
    await apply(db, *lifecycle(subscription_id)[:2])
    await apply(
        db,
        sub_event(
            "customer.subscription.updated",
            subscription_id,
            status="past_due",
            created=T0 + 10,
            period=PERIOD_2,
        ),
    )
    assert (await stored(db, subscription_id))["entitlements"][0][1] == "suspended"

    await apply(
        db,
        stripe_events.event(
            "invoice.paid",
            stripe_events.subscription_invoice(
                subscription_id, period_start=PERIOD_2[0], period_end=PERIOD_2[1]
            ),
            created=T0 + 20,
        ),
        sub_event(
            "customer.subscription.updated",
            subscription_id,
            status="active",
            created=T0 + 21,
            period=PERIOD_2,
        ),
    )

    assert (await stored(db, subscription_id))["entitlements"] == [(PLAN, "active", PERIOD_2[1])]


async def test_a_paid_renewal_invoice_extends_the_entitlement_to_its_period_end_once(
    db: Database,
) -> None:
    subscription_id = f"sub_{uuid.uuid4().hex[:14]}"
    await apply(db, *lifecycle(subscription_id)[:2])
    paid = stripe_events.event(
        "invoice.paid",
        stripe_events.subscription_invoice(
            subscription_id, period_start=PERIOD_2[0], period_end=PERIOD_2[1]
        ),
        created=T0 + 30,
    )
    older = stripe_events.event(
        "invoice.paid",
        stripe_events.subscription_invoice(
            subscription_id, period_start=PERIOD_1[0], period_end=PERIOD_1[1]
        ),
        created=T0 + 31,
    )

    await apply(db, paid, redelivered(paid), older)

    assert (await stored(db, subscription_id))["entitlements"] == [(PLAN, "active", PERIOD_2[1])]


async def test_a_late_active_snapshot_never_brings_a_canceled_subscription_back(
    db: Database,
) -> None:
    subscription_id = f"sub_{uuid.uuid4().hex[:14]}"
    created, _updated, deleted = lifecycle(subscription_id)
    await apply(db, created, deleted)

    late = sub_event(
        "customer.subscription.updated", subscription_id, status="active", created=T0 + 99
    )
    await apply(db, late)

    result = await stored(db, subscription_id)
    assert (result["status"], result["entitlements"], result["slot"]) == (
        "canceled",
        [(PLAN, "expired", T0 + 2)],
        None,
    )


async def test_without_metadata_the_owner_is_the_customers_user(db: Database) -> None:
    async with db.sessionmaker() as session, session.begin():
        session.add(
            StripeCustomer(
                user_id=USER_ID, user_stripe_id="cus_MappedCustomer01", email="a@example.com"
            )
        )
    subscription_id = f"sub_{uuid.uuid4().hex[:14]}"

    await apply(
        db,
        sub_event(
            "customer.subscription.updated",
            subscription_id,
            status="active",
            created=T0,
            metadata={"product_id": PLAN},
            customer="cus_MappedCustomer01",
        ),
    )

    result = await stored(db, subscription_id)
    assert (result["user_id"], result["entitlements"]) == (
        USER_ID,
        [(PLAN, "active", PERIOD_1[1])],
    )


async def test_the_paid_subscription_order_is_paid_but_grants_no_order_entitlement(
    db: Database,
) -> None:
    session_id = f"cs_test_{uuid.uuid4().hex}"
    order_id = await store_order(
        db,
        session_id=session_id,
        amount_total=1500,
        lines=[{"product_id": PLAN, "quantity": 1, "amount": 1500, "currency": "eur"}],
    )
    async with db.sessionmaker() as session, session.begin():
        order = await session.get(type(await get_order(db, order_id)), order_id)
        assert order is not None
        order.mode = "subscription"
    completed = stripe_events.checkout_session(
        session_id=session_id, metadata={"user_id": USER_ID, "order_id": order_id}
    )
    completed.update(mode="subscription", subscription="sub_FromCheckout01", payment_intent=None)

    await apply(db, stripe_events.event("checkout.session.completed", completed))

    assert (await get_order(db, order_id)).status == "paid"
    async with db.sessionmaker() as session:
        granted = (
            await session.scalars(select(Entitlement).where(Entitlement.source_id == order_id))
        ).all()
    assert granted == []
