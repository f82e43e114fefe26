"""Rows written on the processing path with plain INSERTs, in the session's transaction.

Events, ticket messages and outbox items are written once and never changed by
the code that creates them, so they need no ORM object and no unit of work:
an INSERT prepared once (`maild.prepared`) and run on the session's connection
is a fraction of the cost, and a later query in the same transaction sees the
row as usual.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any, TypeAlias

from sqlalchemy import Row
from sqlmodel import Session, SQLModel

from maild.bytes_apart import bytes_apart
from maild.models import Inbound, InboundRaw, Outbox, OutboxRaw, table_of
from maild.prepared import Prepared
from maild.sqlite_blobs import StoredBlob, in_pieces, insert_with_blob

AnyRow: TypeAlias = Row[*tuple[Any, ...]]  # a result row of any columns


@cache
def insert_statement(model: type[SQLModel]) -> Prepared:
    """The INSERT of `model`'s table, built once (its columns come with each execution)."""
    return Prepared(table_of(model).insert())


def insert_row(session: Session, model: type[SQLModel], **values: Any) -> int:
    """Insert one row of `model` (column defaults apply) and return its primary key."""
    key = insert_statement(model).run(session, values).inserted_key
    assert key is not None
    return int(key)


# Bytes of this size and more are written into SQLite a piece at a time.
LARGE_BYTES = 256 * 1024


def insert_row_with_parts(session: Session, model: type[SQLModel], column: str,
                          parts: Sequence[bytes | StoredBlob], **values: Any) -> int:
    """`insert_row` with the parts joined in `column`: on SQLite, large ones written in pieces.

    A `StoredBlob` part (SQLite only) is copied from where it is stored.
    """
    connection = session.connection()
    size = sum(part.size if isinstance(part, StoredBlob) else len(part) for part in parts)
    if size >= LARGE_BYTES and in_pieces(connection):
        return insert_with_blob(connection, table_of(model), column, parts, values)
    assert not any(isinstance(part, StoredBlob) for part in parts), "stored blobs: SQLite only"
    return insert_row(session, model, **values, **{column: b"".join(
        part for part in parts if isinstance(part, bytes))})


def insert_outbox(session: Session, parts: Sequence[bytes | StoredBlob], **values: object) -> int:
    """Queue an outbox item whose bytes are `parts` joined, kept as `bytes_apart` says; its id.

    Where the bytes are kept apart (SQLite), a part that is a stored inbound message
    (a `StoredBlob` of its `raw`) is referred to rather than copied.
    """
    dialect = session.connection().dialect.name
    if not bytes_apart(dialect):
        return insert_row_with_parts(session, Outbox, "raw", parts, **values)
    outbox_id = insert_row(session, Outbox, raw=b"", **values)
    originals = [index for index, part in enumerate(parts)
                 if isinstance(part, StoredBlob) and part.column == "raw"
                 and part.table.name in _INBOUND_TABLES]
    if len(originals) != 1:
        insert_row_with_parts(session, OutboxRaw, "raw", parts, outbox_id=outbox_id)
        return outbox_id
    index = originals[0]
    original = parts[index]
    assert isinstance(original, StoredBlob)
    before, after = parts[:index], parts[index + 1:]
    assert all(isinstance(part, bytes) for part in (*before, *after)), "one stored part"
    insert_row(session, OutboxRaw, outbox_id=outbox_id, original_id=original.row_id,
               raw=b"".join(part for part in before if isinstance(part, bytes)),
               tail=b"".join(part for part in after if isinstance(part, bytes)))
    return outbox_id


_INBOUND_TABLES = (table_of(Inbound).name, table_of(InboundRaw).name)
