"""Rows written on the processing path with plain INSERTs, in the session's transaction.

Events, ticket messages and outbox items are written once and never changed by
the code that creates them, so they need no ORM object and no unit of work:
an INSERT on the session's connection is a fraction of the cost, and a later
query in the same transaction sees the row as usual.
"""

from __future__ import annotations

from functools import cache
from typing import Any, TypeAlias

from sqlalchemy import Insert, Row
from sqlmodel import Session, SQLModel

from maild.models import table_of

AnyRow: TypeAlias = Row[*tuple[Any, ...]]  # a result row of any columns


@cache
def insert_statement(model: type[SQLModel]) -> Insert:
    """The INSERT of `model`'s table, built once (its columns come with each execution)."""
    return table_of(model).insert()


def insert_row(session: Session, model: type[SQLModel], **values: Any) -> int:
    """Insert one row of `model` (column defaults apply) and return its primary key."""
    result = session.connection().execute(insert_statement(model), values)
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])
