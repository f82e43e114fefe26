"""Rows written on the processing path with plain INSERTs, in the session's transaction.

Events, ticket messages and outbox items are written once and never changed by
the code that creates them, so they need no ORM object and no unit of work:
an INSERT on the session's connection is a fraction of the cost, and a later
query in the same transaction sees the row as usual.
"""

from __future__ import annotations

from typing import Any, TypeAlias

from sqlalchemy import Row
from sqlmodel import Session, SQLModel

from maild.models import table_of

AnyRow: TypeAlias = Row[*tuple[Any, ...]]  # a result row of any columns


def insert_row(session: Session, model: type[SQLModel], **values: Any) -> int:
    """Insert one row of `model` (column defaults apply) and return its primary key."""
    result = session.connection().execute(table_of(model).insert(), values)
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])
