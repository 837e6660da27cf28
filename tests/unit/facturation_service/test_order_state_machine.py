"""The order state machine: every allowed edge moves once, every other one is refused, and the
database's conditional UPDATE is what decides."""

from __future__ import annotations

import itertools

import pytest

from facturation_service import orders
from facturation_service.models import Order, OrderStatus
from shared import Database
from tests.unit.facturation_service.orders_support import get_order, store_order

ALLOWED = {
    ("pending_payment", "paid"),
    ("pending_payment", "failed"),
    ("pending_payment", "expired"),
    ("pending_payment", "canceled"),
    ("paid", "partially_refunded"),
    ("paid", "refunded"),
    ("partially_refunded", "refunded"),
}
STATUSES = [
    "pending_payment",
    "paid",
    "failed",
    "expired",
    "canceled",
    "partially_refunded",
    "refunded",
    "complete",
]
PAIRS = list(itertools.product(STATUSES, STATUSES))


def test_the_statuses_are_exactly_the_contracts() -> None:
    assert {status.value for status in OrderStatus} == set(STATUSES)


@pytest.mark.parametrize(("current", "target"), PAIRS, ids=[f"{a}->{b}" for a, b in PAIRS])
def test_each_edge_is_allowed_only_if_the_contract_draws_it(current: str, target: str) -> None:
    assert orders.can_move(current, target) is ((current, target) in ALLOWED)


def test_an_unknown_status_never_moves() -> None:
    assert not orders.can_move("draft", "paid")
    assert not orders.can_move("paid", "shipped")


async def test_every_allowed_transition_moves_and_every_refused_one_changes_nothing(
    db: Database,
) -> None:
    placed = {pair: await store_order(db, status=pair[0]) for pair in PAIRS}

    async with db.sessionmaker() as session, session.begin():
        moved = {
            pair: await orders.transition(session, OrderStatus(pair[1]), Order.id == order_id)
            for pair, order_id in placed.items()
        }

    for (current, target), order_id in placed.items():
        allowed = (current, target) in ALLOWED
        assert (moved[(current, target)] == order_id) is allowed, (current, target)
        assert (await get_order(db, order_id)).status == (target if allowed else current)


async def test_a_transition_happens_once_and_a_second_call_finds_it_done(db: Database) -> None:
    order_id = await store_order(db)

    async with db.sessionmaker() as session, session.begin():
        first = await orders.transition(session, OrderStatus.PAID, Order.id == order_id)
        second = await orders.transition(session, OrderStatus.PAID, Order.id == order_id)
        late = await orders.transition(session, OrderStatus.EXPIRED, Order.id == order_id)

    assert (first, second, late) == (order_id, None, None)
    assert (await get_order(db, order_id)).status == "paid"


@pytest.mark.parametrize(
    ("refunded", "expected"),
    [(0, None), (1, "partially_refunded"), (1999, "partially_refunded"), (2000, "refunded")],
)
def test_the_refund_status_follows_the_amount_refunded(refunded: int, expected: str | None) -> None:
    assert orders.refund_status(2000, refunded) == expected
