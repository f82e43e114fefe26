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

from maild.bytes_apart import StoredOriginal, bytes_apart
from maild.models import Outbox, OutboxRaw, table_of
from maild.prepared import Prepared
from maild.sqlite_blobs import in_pieces, insert_with_blob
from maild.sqlite_pieces import LARGE_BYTES

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


def send_row(session: Session, model: type[SQLModel], **values: Any) -> None:
    """`insert_row` for a row whose key nobody reads: sent without waiting where the
    caller's block is `pipelined`."""
    insert_statement(model).send(session, values)


def insert_row_with_parts(session: Session, model: type[SQLModel], column: str,
                          parts: Sequence[bytes], **values: Any) -> int:
    """`insert_row` with the parts joined in `column`: on SQLite, large ones written in pieces."""
    connection = session.connection()
    if sum(len(part) for part in parts) >= LARGE_BYTES and in_pieces(connection):
        return insert_with_blob(connection, table_of(model), column, parts, values)
    return insert_row(session, model, **values, **{column: b"".join(parts)})


def insert_outbox(session: Session, parts: Sequence[bytes | StoredOriginal],
                  **values: object) -> int:
    """Queue an outbox item whose bytes are `parts` joined, kept as `bytes_apart` says; its id.

    Where the bytes are kept apart (SQLite), a `StoredOriginal` part is referred to
    rather than copied; elsewhere the parts must all be bytes.
    """
    if not bytes_apart(session.connection().dialect.name):
        return insert_row_with_parts(session, Outbox, "raw", _plain(parts), **values)
    outbox_id = insert_row(session, Outbox, raw=b"", **values)
    originals = [index for index, part in enumerate(parts) if isinstance(part, StoredOriginal)]
    if not originals:
        insert_row_with_parts(session, OutboxRaw, "raw", _plain(parts), outbox_id=outbox_id)
        return outbox_id
    [index] = originals  # an item carries one original
    original = parts[index]
    assert isinstance(original, StoredOriginal)
    insert_row(session, OutboxRaw, outbox_id=outbox_id, original_id=original.inbound_id,
               raw=b"".join(_plain(parts[:index])), tail=b"".join(_plain(parts[index + 1:])))
    return outbox_id


def add_outbox(session: Session, parts: Sequence[bytes | StoredOriginal],
               **values: object) -> None:
    """`insert_outbox` for an item whose id nobody reads: where its bytes are in its row
    (PostgreSQL), sent without waiting in a `pipelined` block."""
    if bytes_apart(session.connection().dialect.name):
        insert_outbox(session, parts, **values)
        return
    send_row(session, Outbox, **values, raw=b"".join(_plain(parts)))


def _plain(parts: Sequence[bytes | StoredOriginal]) -> list[bytes]:
    """`parts`, which must be bytes only."""
    assert all(isinstance(part, bytes) for part in parts), "a stored original is only referred to"
    return [part for part in parts if isinstance(part, bytes)]
