"""The durable boundary: raw bytes committed before any source is told "stored".

The same message delivered again (an SMTP retry, an IMAP re-fetch, the same
mail to two support addresses) has the same idempotency key and is recorded
once. The key is a digest of the message without its trace headers, so two
different messages that share a Message-ID are both kept, and a message
without one is still recognised by its content.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Connection, Engine, bindparam, insert, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError
from sqlalchemy.sql.dml import Insert
from sqlmodel import Session, col

from maild.bytes_apart import bytes_apart, row_raw
from maild.db import StorageError
from maild.log import get_logger
from maild.message_key import TRACE_HEADERS, idempotency_key, raw_message_id
from maild.models import Inbound, InboundRaw, InboundState, table_of, utcnow
from maild.prepared import Prepared
from maild.sqlite_blobs import insert_with_blob
from maild.sqlite_pieces import LARGE_BYTES
from maild.write_turns import write_turns

log = get_logger("maild.intake")

__all__ = ["TRACE_HEADERS", "Arrival", "Stored", "idempotency_key", "raw_message_id",
           "store_batch", "store_inbound"]

@dataclass(frozen=True)
class Stored:
    """The outcome of storing: the inbound id, and whether it was already there."""

    inbound_id: int
    duplicate: bool


def _clip(text: str | None, length: int) -> str | None:
    return text[:length] if text is not None else None


def store_inbound(
    engine: Engine,
    raw: bytes,
    *,
    transport: str,
    envelope_sender: str | None = None,
    recipients: Sequence[str] = (),
    source: str | None = None,
    received_at: datetime | None = None,
) -> Stored:
    """Commit `raw` with its envelope, or find the earlier copy; raises `StorageError` on failure.

    Only after this returns may the source be told the message is stored.
    """
    key = idempotency_key(raw)
    recipients = [r.strip().lower() for r in recipients if r.strip()]
    try:
        with Session(engine, expire_on_commit=False) as session:
            existing = session.scalars(select(Inbound).where(
                col(Inbound.idempotency_key) == key)).first()
            if existing is not None:
                return _record_duplicate(session, existing, recipients)
            dialect = engine.dialect.name
            row = _new_row(Arrival(raw, transport, envelope_sender, recipients, source), key,
                           recipients, dialect)
            if received_at is not None:
                row.received_at = received_at
            session.add(row)
            try:
                if bytes_apart(dialect):
                    session.flush()
                    assert row.id is not None
                    _insert_raw(session.connection(), row.id, raw)
                session.commit()
            except IntegrityError:
                # Another process stored the same message a moment ago.
                session.rollback()
                existing = session.scalars(select(Inbound).where(
                    col(Inbound.idempotency_key) == key)).one()
                return _record_duplicate(session, existing, recipients)
            assert row.id is not None
            log.info("inbound.stored", inbound_id=row.id, message_id=row.message_id,
                     transport=transport, size=len(raw))
            return Stored(inbound_id=row.id, duplicate=False)
    except (OperationalError, SQLAlchemyError, OSError) as error:
        reason = getattr(error, "orig", None) or error
        log.error("inbound.store_failed", error=f"{type(error).__name__}: {reason}",
                  transport=transport, size=len(raw))
        raise StorageError(f"the message could not be stored: {reason}") from error


def _record_duplicate(session: Session, existing: Inbound, recipients: list[str]) -> Stored:
    existing.duplicates += 1
    merged = list(dict.fromkeys([*(existing.envelope_recipients or []), *recipients]))
    existing.envelope_recipients = merged
    session.add(existing)
    session.commit()
    assert existing.id is not None
    log.info("inbound.duplicate", inbound_id=existing.id, message_id=existing.message_id,
             duplicates=existing.duplicates)
    return Stored(inbound_id=existing.id, duplicate=True)


@dataclass(frozen=True)
class Arrival:
    """One message waiting to be stored, with its envelope."""

    raw: bytes
    transport: str
    envelope_sender: str | None = None
    recipients: Sequence[str] = field(default=())
    source: str | None = None


_EXISTING = (select(col(Inbound.id), col(Inbound.idempotency_key),
                    col(Inbound.envelope_recipients))
             .where(col(Inbound.idempotency_key).in_(bindparam("keys", expanding=True))))
_COUNT_REPEATS = (update(Inbound).where(col(Inbound.id) == bindparam("row_id"))
                  .values(duplicates=col(Inbound.duplicates) + bindparam("copies"),
                          envelope_recipients=bindparam("merged")))
_STATEMENTS: dict[str, Prepared] = {}
_INSERT_RAW = Prepared(insert(InboundRaw))


def _insert_new(dialect: str) -> Prepared:
    """INSERT of a new row that skips a key already stored (by anyone), returning its id.

    Prepared (`maild.prepared`): a batch holds a few messages, and SQLAlchemy's own
    execution of a statement costs more than the row does.
    """
    prepared = _STATEMENTS.get(dialect)
    if prepared is None:
        key = [col(Inbound.idempotency_key)]
        statement: Insert
        if dialect == "sqlite":
            statement = sqlite_insert(Inbound).on_conflict_do_nothing(index_elements=key)
        elif dialect == "postgresql":
            statement = postgresql_insert(Inbound).on_conflict_do_nothing(index_elements=key)
        else:
            raise StorageError(f"no intake statement for the {dialect} database")
        prepared = _STATEMENTS[dialect] = Prepared(
            statement.returning(col(Inbound.id), col(Inbound.idempotency_key)))
    return prepared


def store_batch(engine: Engine, arrivals: Sequence[Arrival], *,
                connection: Connection | None = None) -> list[Stored | StorageError]:
    """Commit several messages in one transaction (one sync to disk), in order.

    Copies within the batch and messages already stored (by this process or another)
    come back as duplicates. If the shared transaction fails, each message is stored
    on its own, so one bad message does not fail the others. A writer that stores
    batch after batch passes its own `connection` (no transaction open), which
    spares it taking one from the pool and giving it back each time.
    """
    keys = [idempotency_key(arrival.raw) for arrival in arrivals]
    arrivals_of = Counter(keys)
    now = utcnow()
    fresh: dict[str, dict[str, object]] = {}
    raw_of: dict[str, bytes] = {}
    arrived_for: dict[str, list[str]] = {}  # key → the recipients of all its copies here
    for arrival, key in zip(arrivals, keys, strict=True):
        recipients = [r.strip().lower() for r in arrival.recipients if r.strip()]
        if key not in fresh:
            fresh[key] = _row_values(arrival, key, recipients, now, engine.dialect.name)
            raw_of[key] = arrival.raw
        arrived_for.setdefault(key, []).extend(recipients)
    try:
        with write_turns(engine).turn(urgent=True), _transaction(engine, connection) as writing:
            insert_new = _insert_new(engine.dialect.name)
            ids = {row.idempotency_key: int(row.id) for values in fresh.values()
                   for row in insert_new.run(writing, values).rows}
            if bytes_apart(engine.dialect.name):
                for key, inbound_id in ids.items():
                    _insert_raw(writing, inbound_id, raw_of[key])
            stored_before = {key for key in fresh if key not in ids}
            known: dict[str, Sequence[str]] = {key: [] for key in fresh}
            if stored_before:
                for row in writing.execute(_EXISTING, {"keys": list(stored_before)}):
                    ids[row.idempotency_key] = int(row.id)
                    known[row.idempotency_key] = row.envelope_recipients or []
            for key, recipients in arrived_for.items():
                copies = arrivals_of[key] - (0 if key in stored_before else 1)
                if copies:
                    writing.execute(_COUNT_REPEATS, {
                        "row_id": ids[key], "copies": copies,
                        "merged": list(dict.fromkeys([*known[key], *recipients]))})
        results: list[Stored | StorageError] = []
        first_seen: set[str] = set(stored_before)
        for key in keys:
            results.append(Stored(inbound_id=ids[key], duplicate=key in first_seen))
            first_seen.add(key)
        log.info("inbound.stored_batch", count=len(arrivals), new=len(fresh) - len(stored_before))
        return results
    except (OperationalError, OSError) as error:
        # The database is locked or unreachable: storing one by one would only wait again.
        reason = getattr(error, "orig", None) or error
        log.error("inbound.store_failed", count=len(arrivals),
                  error=f"{type(error).__name__}: {reason}")
        return [StorageError(f"the message could not be stored: {reason}")] * len(arrivals)
    except SQLAlchemyError as error:
        # One bad row: store each on its own.
        log.warning("inbound.batch_failed", count=len(arrivals),
                    error=f"{type(error).__name__}: {getattr(error, 'orig', None) or error}")
        return [_store_one(engine, arrival) for arrival in arrivals]


def _insert_raw(connection: Connection, inbound_id: int, raw: bytes) -> None:
    """The message's bytes in its `inbound_raw` row (SQLite): a large message written a
    piece at a time, so that SQLite holds no copy of it besides (`maild.sqlite_blobs`)."""
    if len(raw) >= LARGE_BYTES:
        insert_with_blob(connection, table_of(InboundRaw), "raw", [raw],
                         {"inbound_id": inbound_id})
    else:
        _INSERT_RAW.run(connection, {"inbound_id": inbound_id, "raw": raw})


@contextmanager
def _transaction(engine: Engine, connection: Connection | None) -> Iterator[Connection]:
    """A transaction on `connection`, or on one of the engine's while it lasts."""
    if connection is None:
        with engine.begin() as borrowed:
            yield borrowed
    else:
        with connection.begin():
            yield connection


def _store_one(engine: Engine, arrival: Arrival) -> Stored | StorageError:
    try:
        return store_inbound(engine, arrival.raw, transport=arrival.transport,
                             envelope_sender=arrival.envelope_sender,
                             recipients=arrival.recipients, source=arrival.source)
    except StorageError as error:
        return error


def _row_values(arrival: Arrival, key: str, recipients: list[str],
                now: datetime, dialect: str) -> dict[str, object]:
    """The new inbound row's columns; its bytes apart from it where `bytes_apart` says."""
    return {
        "received_at": now,
        "transport": arrival.transport,
        "source": arrival.source,
        "envelope_sender": _clip(arrival.envelope_sender, 512),
        "envelope_recipients": recipients,
        "raw": row_raw(dialect, arrival.raw),
        "size": len(arrival.raw),
        "idempotency_key": key,
        "message_id": raw_message_id(arrival.raw),
        "state": InboundState.RECEIVED,
        "attempts": 0,
        "duplicates": 0,
    }


def _new_row(arrival: Arrival, key: str, recipients: list[str], dialect: str) -> Inbound:
    return Inbound.model_validate(_row_values(arrival, key, recipients, utcnow(), dialect))
