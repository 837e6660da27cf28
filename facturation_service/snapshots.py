"""Newest snapshot wins: the one upsert that stores a Stripe object's snapshot unless the stored
one is newer. Invoices, subscriptions, refunds and disputes each say what "newer" means (the
columns of their ordering key); the comparison happens inside the one
``INSERT ... ON CONFLICT (id) DO UPDATE ... WHERE`` statement, which holds the row lock while it
decides, so two workers applying two snapshots at once cannot both win.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import FromClause, String, bindparam, func, select, tuple_

from facturation_service.models import StripeCustomer

__all__ = ["bound_columns", "upsert_unless_newer_stored", "user_of_customer"]


def bound_columns(table: FromClause, names: Sequence[str]) -> dict[str, Any]:
    """A bound parameter ``p_<name>`` for each column: the statement is built once per dialect
    and each snapshot only binds its values."""
    return {name: bindparam(f"p_{name}", type_=table.c[name].type) for name in names}


def user_of_customer(parameter: str = "p_customer") -> Any:
    """The user whose Stripe customer is the bound ``parameter``; NULL while the customer is
    not mapped yet (the row keeps NULL until a later snapshot finds the mapping).

    A statement run for many rows at once (SQLAlchemy's "insertmanyvalues") needs its own
    parameter here: one bound twice in a row's ``VALUES`` is sent once for each row."""
    return (
        select(StripeCustomer.user_id)
        .where(StripeCustomer.user_stripe_id == bindparam(parameter, type_=String()))
        .scalar_subquery()
    )


def upsert_unless_newer_stored(
    dialect: Any,
    table: FromClause,
    values: Mapping[str, Any],
    *,
    key: Sequence[str],
    ties_replace: bool,
    keep_stored: Sequence[str] = (),
    keep_given: Sequence[str] = (),
) -> Any:
    """The statement (``RETURNING id``: a row when it inserted or replaced).

    Args:
        dialect: ``sqlalchemy.dialects.postgresql`` or ``sqlite``.
        values: every column written; plain values or bound parameters.
        key: the columns that order snapshots, most significant first (none NULL).
        ties_replace: a snapshot whose key equals the stored one replaces it.
        keep_stored: columns that keep their stored value unless it is NULL.
        keep_given: columns that take the new value unless it is NULL.
    """
    statement = dialect.insert(table).values(**values)
    excluded, columns = statement.excluded, table.c
    stored_key = tuple_(*(columns[name] for name in key))
    given_key = tuple_(*(excluded[name] for name in key))
    newer = stored_key <= given_key if ties_replace else stored_key < given_key
    updates = {name: excluded[name] for name in values if name != "id"}
    for name in keep_stored:
        updates[name] = func.coalesce(columns[name], excluded[name])
    for name in keep_given:
        updates[name] = func.coalesce(excluded[name], columns[name])
    return statement.on_conflict_do_update(
        index_elements=[columns.id], set_=updates, where=newer
    ).returning(columns.id)
