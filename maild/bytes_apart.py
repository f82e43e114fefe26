"""Where the bytes of a stored mail are kept: apart from its changing row on SQLite.

An inbound message's row changes after it is stored, when the message is claimed
and when it is processed; an outbox item's row, when it is claimed, (over SMTP)
marked before its final dot, and recorded sent. SQLite writes a whole row again
whenever its size changes, a blob included: with the bytes in the row, every byte
of a mail was written two or three times more, and a large one was rebuilt in
memory each time. On SQLite the bytes are therefore stored once, in `inbound_raw`
and `outbox_raw` keyed by the row's id, and the row's own `raw` is left empty.

PostgreSQL keeps a large value out of its row (TOAST) and an update that leaves it
alone does not copy it; there the bytes stay in `raw`, where an instance of the
previous version reads them during a rolling upgrade. A row stored before the
tables existed has its bytes in `raw` on either database. Readers take the table
apart first, then `raw`.

On SQLite a team copy that carries its original as it was received does not copy
it: its `outbox_raw` row holds the bytes before and after the original and refers
to the stored message, which is never changed or deleted (a foreign key keeps it).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, LargeBinary, Table, bindparam, case, cast, exists, select
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.functions import coalesce
from sqlalchemy.sql.selectable import Join
from sqlmodel import Session

from maild.models import Inbound, InboundRaw, Outbox, OutboxRaw, table_of
from maild.prepared import Prepared

INBOUND = table_of(Inbound)
INBOUND_RAW = table_of(InboundRaw)
OUTBOX = table_of(Outbox)
OUTBOX_RAW = table_of(OutboxRaw)

# The inbound rows with their bytes wherever they are kept: select from this...
INBOUND_WITH_BYTES: Join = INBOUND.outerjoin(
    INBOUND_RAW, INBOUND_RAW.c.inbound_id == INBOUND.c.id)
# ...and read this column.
INBOUND_BYTES: ColumnElement[bytes] = coalesce(INBOUND_RAW.c.raw, INBOUND.c.raw)
# The same for outbox items. A team copy that refers to its original (`original_id`) is
# the bytes before it, the original wherever it is kept, and the bytes after it.
_ORIGINAL = INBOUND.alias("original")
_ORIGINAL_RAW = INBOUND_RAW.alias("original_raw")
OUTBOX_WITH_BYTES: Join = (
    OUTBOX.outerjoin(OUTBOX_RAW, OUTBOX_RAW.c.outbox_id == OUTBOX.c.id)
    .outerjoin(_ORIGINAL, _ORIGINAL.c.id == OUTBOX_RAW.c.original_id)
    .outerjoin(_ORIGINAL_RAW, _ORIGINAL_RAW.c.inbound_id == OUTBOX_RAW.c.original_id))
OUTBOX_BYTES: ColumnElement[bytes] = case(
    (OUTBOX_RAW.c.original_id.is_(None), coalesce(OUTBOX_RAW.c.raw, OUTBOX.c.raw)),
    else_=cast(OUTBOX_RAW.c.raw.concat(coalesce(_ORIGINAL_RAW.c.raw, _ORIGINAL.c.raw))
               .concat(OUTBOX_RAW.c.tail), LargeBinary))

_INBOUND_BYTES_OF = Prepared(select(INBOUND_BYTES).select_from(INBOUND_WITH_BYTES).where(
    INBOUND.c.id == bindparam("row_id")))
_OUTBOX_BYTES_OF = Prepared(select(OUTBOX_BYTES).select_from(OUTBOX_WITH_BYTES).where(
    OUTBOX.c.id == bindparam("row_id")))
_INBOUND_APART = Prepared(select(exists().where(INBOUND_RAW.c.inbound_id == bindparam("row_id"))))


@dataclass(frozen=True)
class StoredOriginal:
    """A part of an outbox item that is inbound message `inbound_id` as it was stored.

    Where bytes are kept apart (`insert_outbox`), the item refers to it rather than
    holding a copy; elsewhere the caller gives the bytes themselves.
    """

    inbound_id: int


def bytes_apart(dialect: str) -> bool:
    """Whether a new mail's bytes go to the table apart (SQLite) rather than its row."""
    return dialect == "sqlite"


def row_raw(dialect: str, raw: bytes) -> bytes:
    """What a new row holds in `raw` on `dialect`: the bytes, or nothing when kept apart."""
    return b"" if bytes_apart(dialect) else raw


def inbound_bytes(where: Session | Connection, inbound_id: int) -> bytes | None:
    """The bytes stored for `inbound_id` exactly as received; None when there is no such row."""
    rows = _INBOUND_BYTES_OF.run(where, {"row_id": inbound_id}).rows
    return bytes(rows[0][0]) if rows else None


def outbox_bytes(where: Session | Connection, outbox_id: int) -> bytes | None:
    """The bytes of outbox item `outbox_id` as they are (or were) sent; None when there is none."""
    rows = _OUTBOX_BYTES_OF.run(where, {"row_id": outbox_id}).rows
    return bytes(rows[0][0]) if rows else None


def inbound_blob_home(connection: Connection, inbound_id: int) -> Table:
    """The table whose `raw` holds the bytes of `inbound_id` (for SQLite's blob I/O by rowid)."""
    apart = _INBOUND_APART.run(connection, {"row_id": inbound_id}).scalar_one()
    return INBOUND_RAW if apart else INBOUND

