"""Where an inbound message's bytes are kept: apart from its row on SQLite, in it elsewhere.

An inbound row changes twice after it is stored: when its message is claimed and
when it is processed. SQLite writes a whole row again whenever its size changes,
a blob included, so with the bytes in the row every byte of a message was written
three times, and a large one was rebuilt in memory for each claim. On SQLite the
bytes are therefore stored once in `inbound_raw`, keyed by the inbound id, and the
row's own `raw` is left empty.

PostgreSQL keeps a large value out of its row (TOAST) and an update that leaves it
alone does not copy it; there the bytes stay in `inbound.raw`, where an instance of
the previous version reads them during a rolling upgrade. A row stored before
`inbound_raw` existed has its bytes in `inbound.raw` on either database. Readers
take `inbound_raw` first, then `inbound.raw`.
"""

from __future__ import annotations

from sqlalchemy import Connection, Table, bindparam, exists, select
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.functions import coalesce
from sqlalchemy.sql.selectable import Join
from sqlmodel import Session

from maild.models import Inbound, InboundRaw, table_of
from maild.prepared import Prepared

INBOUND = table_of(Inbound)
INBOUND_RAW = table_of(InboundRaw)

# The inbound rows with their bytes wherever they are kept: select from this...
WITH_BYTES: Join = INBOUND.outerjoin(INBOUND_RAW, INBOUND_RAW.c.inbound_id == INBOUND.c.id)
# ...and read this column.
RAW: ColumnElement[bytes] = coalesce(INBOUND_RAW.c.raw, INBOUND.c.raw)

_BYTES_OF = Prepared(select(RAW).select_from(WITH_BYTES).where(
    INBOUND.c.id == bindparam("inbound_id")))
_APART = Prepared(select(exists().where(INBOUND_RAW.c.inbound_id == bindparam("inbound_id"))))


def bytes_apart(dialect: str) -> bool:
    """Whether a new message's bytes go to `inbound_raw` (SQLite) rather than its row."""
    return dialect == "sqlite"


def row_raw(dialect: str, raw: bytes) -> bytes:
    """What a new inbound row holds in `raw` on `dialect`: the bytes, or nothing when apart."""
    return b"" if bytes_apart(dialect) else raw


def stored_bytes(where: Session | Connection, inbound_id: int) -> bytes | None:
    """The bytes stored for `inbound_id` exactly as received; None when there is no such row."""
    rows = _BYTES_OF.run(where, {"inbound_id": inbound_id}).rows
    return bytes(rows[0][0]) if rows else None


def blob_home(connection: Connection, inbound_id: int) -> Table:
    """The table whose `raw` holds the bytes of `inbound_id` (for SQLite's blob I/O by rowid)."""
    apart = _APART.run(connection, {"inbound_id": inbound_id}).scalar_one()
    return INBOUND_RAW if apart else INBOUND
