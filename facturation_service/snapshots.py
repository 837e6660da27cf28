"""Newest snapshot wins: the one upsert that stores a Stripe object's snapshot unless the stored
one is newer. Invoices, subscriptions, refunds and disputes each say what "newer" means (the
columns of their ordering key); the comparison happens inside the one
``INSERT ... ON CONFLICT (id) DO UPDATE ... WHERE`` statement, which holds the row lock while it
decides, so two workers applying two snapshots at once cannot both win.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import FromClause, func, tuple_

__all__ = ["upsert_unless_newer_stored"]


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
