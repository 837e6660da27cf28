"""Entitlements: the products a user may use now, and where each came from.

An entitlement is granted by a *source*: ``order`` (the fulfil step of a paid order) today,
``subscription`` later; the unique key (source, source_id, product_id) makes a second grant of the
same product by the same source impossible, whoever races to insert it.

The status of an order's entitlements is never stepped event by event: :func:`sync_order` derives
it from the order's facts (refunded in full, disputes open or lost) whenever one of them changes,
so events applied in any order end in the same place. ``revoked`` and ``expired`` are final.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

import msgspec
from sqlalchemy import case, exists, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from facturation_service.models import Dispute, Entitlement, Order, OrderStatus, utcnow

__all__ = [
    "DISPUTE_CLOSED_STATUSES",
    "EntitlementSource",
    "EntitlementStatus",
    "EntitlementView",
    "grant",
    "list_user_entitlements",
    "sync_order",
]


class EntitlementStatus(enum.StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    REVOKED = "revoked"
    EXPIRED = "expired"


class EntitlementSource(enum.StrEnum):
    ORDER = "order"
    SUBSCRIPTION = "subscription"


FINAL = frozenset({EntitlementStatus.REVOKED, EntitlementStatus.EXPIRED})
CURRENT = frozenset({EntitlementStatus.ACTIVE, EntitlementStatus.SUSPENDED})

DISPUTE_CLOSED_STATUSES = frozenset({"won", "lost", "warning_closed", "prevented"})
"""A dispute in any other status is open: the buyer's access waits for its outcome."""


class EntitlementView(msgspec.Struct):
    product_id: str
    status: str
    source: str
    source_id: str
    granted_at: datetime
    ends_at: datetime | None


def _insert(session: AsyncSession) -> Any:
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    return dialect.insert(Entitlement).on_conflict_do_nothing(
        index_elements=["source", "source_id", "product_id"]
    )


async def grant(
    session: AsyncSession,
    *,
    user_id: str,
    source: EntitlementSource,
    source_id: str,
    product_ids: list[str],
    ends_at: datetime | None = None,
) -> int:
    """Grant each product once for this source; returns how many rows this call created."""
    if not product_ids:
        return 0
    now = utcnow()
    rows = [
        {
            "user_id": user_id,
            "product_id": product_id,
            "status": EntitlementStatus.ACTIVE,
            "source": source,
            "source_id": source_id,
            "granted_at": now,
            "ends_at": ends_at,
            "updated_at": now,
        }
        for product_id in dict.fromkeys(product_ids)
    ]
    inserted = await session.execute(_insert(session).returning(Entitlement.id), rows)
    return len(inserted.all())


async def sync_order(session: AsyncSession, order_id: str) -> None:
    """Bring the order's entitlements to what its facts say, in one UPDATE.

    Revoked when the order is refunded in full or a dispute was lost; suspended while a dispute
    is open; active otherwise.
    """
    disputes = select(Dispute.id).where(Dispute.order_id == order_id)
    lost = exists(disputes.where(Dispute.status == "lost"))
    open_ = exists(disputes.where(Dispute.status.not_in(DISPUTE_CLOSED_STATUSES)))
    refunded = exists(
        select(Order.id).where(Order.id == order_id, Order.status == OrderStatus.REFUNDED)
    )
    target = case(
        (refunded | lost, EntitlementStatus.REVOKED.value),
        (open_, EntitlementStatus.SUSPENDED.value),
        else_=EntitlementStatus.ACTIVE.value,
    )
    await session.execute(
        update(Entitlement)
        .where(
            Entitlement.source == EntitlementSource.ORDER,
            Entitlement.source_id == order_id,
            Entitlement.status.not_in(FINAL),
            Entitlement.status != target,
        )
        .values(status=target, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )


async def list_user_entitlements(
    session: AsyncSession, user_id: str, *, every: bool = False
) -> list[EntitlementView]:
    """The user's entitlements, newest grant first; only active and suspended unless ``every``."""
    query = select(Entitlement).where(Entitlement.user_id == user_id)
    if not every:
        query = query.where(Entitlement.status.in_(CURRENT))
    query = query.order_by(Entitlement.granted_at.desc(), Entitlement.id.desc())
    return [
        EntitlementView(
            product_id=row.product_id,
            status=row.status,
            source=row.source,
            source_id=row.source_id,
            granted_at=row.granted_at,
            ends_at=row.ends_at,
        )
        for row in await session.scalars(query)
    ]
