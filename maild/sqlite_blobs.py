"""Large byte columns on SQLite, read and written a piece at a time instead of whole.

Reading a blob the usual way holds it twice at once (SQLite's copy and Python's);
writing one holds it three times (the bytes, SQLite's copy of the parameter and the
record it builds), and SQLite's statement cache keeps the parameter's copy until the
statement runs again. Through SQLite's incremental blob I/O only a piece is in memory.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, cast

from sqlalchemy import Connection, Insert, Table, bindparam, func
from sqlalchemy.exc import DBAPIError

from maild.sqlite_pieces import write_pieces

PIECE = 64 * 1024


def in_pieces(connection: Connection) -> bool:
    """Whether this connection's database is SQLite, whose blobs are read and written here."""
    return connection.dialect.name == "sqlite"


def _sqlite(connection: Connection) -> sqlite3.Connection:
    return cast(sqlite3.Connection, connection.connection.dbapi_connection)


@contextmanager
def blob_pieces(connection: Connection, table: Table, column: str, row_id: int,
                piece: int = PIECE) -> Iterator[Iterator[bytes]]:
    """The bytes in `column` of row `row_id` of `table`, `piece` bytes at a time.

    Read on the connection's own transaction, while the block is open.
    """
    with _sqlite(connection).blobopen(table.name, column, row_id, readonly=True) as blob:
        yield iter(lambda: blob.read(piece), b"")


_INSERTS: dict[tuple[str, str], Insert] = {}


def insert_with_blob(connection: Connection, table: Table, column: str,
                     parts: Sequence[bytes], values: Mapping[str, Any]) -> int:
    """Insert a row of `table` with `values` and the parts joined in `column`; returns its id.

    The row is inserted with zeros in `column` (SQLite then builds the record in
    memory, but no copy of the bytes besides), and the parts are written into it
    after, a piece at a time: they are never joined into one copy. A failed write
    raises SQLAlchemy's error for it (`OperationalError` for a full disk), as a
    failed statement would.
    """
    statement = _INSERTS.get((table.name, column))
    if statement is None:
        statement = table.insert().values({column: func.zeroblob(bindparam("blob_size"))})
        _INSERTS[(table.name, column)] = statement
    size = sum(len(part) for part in parts)
    result = connection.execute(statement, {**values, "blob_size": size})
    key = result.inserted_primary_key
    assert key is not None
    row_id = int(key[0])
    try:
        write_pieces(_sqlite(connection), table.name, column, row_id, parts)
    except sqlite3.Error as error:
        # As SQLAlchemy raises it from a statement, so that callers meet one kind of error.
        raise DBAPIError.instance(f"blob write into {table.name}.{column}", None, error,
                                  sqlite3.Error) from error
    return row_id
