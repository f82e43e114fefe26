"""The MTA pipe's quick store: one message into SQLite with the standard library only.

`maild deliver` runs once per message, so its start-up is its cost. When the
database is SQLite and its schema is current, the message is committed here
with `sqlite3` (the same row, idempotency key and duplicate handling as
`maild.intake.store_inbound`) without importing SQLAlchemy or the pipeline.
Anything else (no database yet, an older schema, PostgreSQL) returns None and
the caller takes the full path, which migrates first.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

from maild.message_key import idempotency_key, raw_message_id
from maild.schema_head import schema_head
from maild.sqlite_pieces import LARGE_BYTES, write_pieces

BUSY_TIMEOUT_MS = 5000


class PipeStoreError(Exception):
    """The message could not be committed; the MTA should try again later."""


@dataclass(frozen=True)
class PipeStored:
    """The inbound row that holds the message, and whether it was there already."""

    inbound_id: int
    duplicate: bool


def _timestamp(moment: datetime) -> str:
    """`moment` as SQLAlchemy writes a UTC DateTime on SQLite."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def _connect(path: Path) -> sqlite3.Connection:
    # mode=rw: never create a database here (the full path creates and migrates it).
    connection = sqlite3.connect(f"file:{quote(str(path))}?mode=rw", uri=True,
                                 timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
    connection.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    # FULL: a commit survives a power loss, which is what exit 0 promises.
    connection.execute("PRAGMA synchronous=FULL")
    return connection


def _schema_is_current(connection: sqlite3.Connection) -> bool:
    try:
        row = connection.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.OperationalError as error:
        if "no such table" in str(error):
            return False
        raise
    return row is not None and row[0] == schema_head()


def _insert_raw(connection: sqlite3.Connection, inbound_id: int, raw: bytes) -> None:
    """`raw` in the `inbound_raw` row of `inbound_id`: a large message inserted as zeros and
    written in pieces (`maild.sqlite_pieces`), so that SQLite holds no copy of it."""
    if len(raw) < LARGE_BYTES:
        connection.execute("INSERT INTO inbound_raw (inbound_id, raw) VALUES (?, ?)",
                           (inbound_id, raw))
        return
    connection.execute("INSERT INTO inbound_raw (inbound_id, raw) VALUES (?, zeroblob(?))",
                       (inbound_id, len(raw)))
    write_pieces(connection, "inbound_raw", "raw", inbound_id, [raw])


def store_sqlite(path: Path, raw: bytes, *, sender: str | None,
                 recipients: Sequence[str]) -> PipeStored | None:
    """Commit `raw` to the SQLite database at `path`; None when the full path must do it.

    Raises `PipeStoreError` when the database exists but cannot be written (locked,
    read-only, disk full).
    """
    if not path.exists():
        return None
    key = idempotency_key(raw)
    wanted = [r.strip().lower() for r in recipients if r.strip()]
    try:
        connection = _connect(path)
    except sqlite3.Error as error:
        raise PipeStoreError(f"cannot open {path}: {error}") from error
    try:
        if not _schema_is_current(connection):
            return None
        connection.execute("BEGIN IMMEDIATE")
        try:
            existing = connection.execute(
                "SELECT id, envelope_recipients FROM inbound WHERE idempotency_key = ?",
                (key,)).fetchone()
            if existing is not None:
                known = json.loads(existing[1] or "[]")
                merged = list(dict.fromkeys([*known, *wanted]))
                connection.execute(
                    "UPDATE inbound SET duplicates = duplicates + 1, envelope_recipients = ? "
                    "WHERE id = ?", (json.dumps(merged), existing[0]))
                connection.execute("COMMIT")
                return PipeStored(inbound_id=int(existing[0]), duplicate=True)
            cursor = connection.execute(
                "INSERT INTO inbound (received_at, transport, source, envelope_sender, "
                "envelope_recipients, raw, size, idempotency_key, message_id, state, attempts, "
                "duplicates) VALUES (?, 'pipe', NULL, ?, ?, x'', ?, ?, ?, 'received', 0, 0)",
                (_timestamp(datetime.now(UTC)), sender[:512] if sender is not None else None,
                 json.dumps(wanted), len(raw), key, raw_message_id(raw)))
            inbound_id = cursor.lastrowid
            assert inbound_id is not None
            # The bytes apart from the row, as `maild.bytes_apart` keeps them on SQLite.
            _insert_raw(connection, inbound_id, raw)
            connection.execute("COMMIT")
        except (sqlite3.IntegrityError, sqlite3.OperationalError) as error:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            if isinstance(error, sqlite3.IntegrityError) or "column" in str(error):
                return None  # the table differs from what this code writes: the full path
            raise
        except BaseException:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            raise
        return PipeStored(inbound_id=inbound_id, duplicate=False)
    except sqlite3.Error as error:
        raise PipeStoreError(f"{path}: {error}") from error
    finally:
        connection.close()
