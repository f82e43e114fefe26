"""Bytes written into an SQLite blob a piece at a time, with the standard library only.

Bound whole, bytes are copied by SQLite, which builds its record from the copy: a row
inserted with zeros and written through SQLite's incremental blob I/O holds no copy
of them. Kept free of SQLAlchemy, so the MTA pipe (`maild deliver`) writes large mail
this way without loading it; `maild.sqlite_blobs` does the same for SQLAlchemy's
connections.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

# Bytes of this size and more are written into SQLite a piece at a time.
LARGE_BYTES = 256 * 1024
_WRITE_PIECE = 1024 * 1024


def write_pieces(connection: sqlite3.Connection, table: str, column: str, row_id: int,
                 parts: Sequence[bytes]) -> None:
    """Write the parts, one after the other, into the zeros of `column` in row `row_id`."""
    with connection.blobopen(table, column, row_id) as blob:
        for part in parts:
            view = memoryview(part)
            for start in range(0, len(part), _WRITE_PIECE):
                blob.write(view[start:start + _WRITE_PIECE])
