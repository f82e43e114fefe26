"""Driving the real pipeline in-process: store a message, process it, read what was made."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from email import message_from_bytes
from email.message import Message
from email.policy import default

from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session, col, select

from maild.bytes_apart import inbound_bytes as read_stored_bytes
from maild.bytes_apart import outbox_bytes
from maild.intake import store_inbound
from maild.models import Inbound, Outbox, Ticket
from maild.processing import Outcome
from maild.runtime import Runtime


def receive(runtime: Runtime, raw: bytes, *, sender: str | None = None,
            to: tuple[str, ...] = ("support@example.se",)) -> Outcome:
    """Store `raw` as if it arrived over SMTP, then process it at once."""
    stored = store_inbound(runtime.engine, raw, transport="smtp", envelope_sender=sender,
                           recipients=to)
    outcome = runtime.processor().process_now(stored.inbound_id)
    assert outcome is not None, "message was not waiting to be processed"
    return outcome


def inbound(runtime: Runtime, inbound_id: int) -> Inbound:
    """The stored row of `inbound_id`."""
    with Session(runtime.engine) as session:
        row = session.get(Inbound, inbound_id)
        assert row is not None
        return row


def stored_bytes(runtime: Runtime, inbound_id: int) -> bytes:
    """The bytes stored for `inbound_id`, exactly as they were received."""
    with runtime.engine.begin() as connection:
        raw = read_stored_bytes(connection, inbound_id)
    assert raw is not None, f"inbound {inbound_id} is not stored"
    return raw


def filled(session: Session, items: Iterable[Outbox]) -> list[Outbox]:
    """`items` as loaded, each with `raw` holding its bytes wherever they are kept.

    On SQLite an item's own `raw` is empty (`maild.bytes_apart`); this fills it in for
    reading, without marking the item changed.
    """
    found = list(items)
    for item in found:
        assert item.id is not None
        set_committed_value(item, "raw", outbox_bytes(session, item.id))
    return found


def tickets(runtime: Runtime) -> list[Ticket]:
    """Every ticket, oldest first."""
    with Session(runtime.engine) as session:
        return list(session.exec(select(Ticket).order_by(col(Ticket.id))).all())


def acks(runtime: Runtime) -> list[Message]:
    """Every queued or sent acknowledgement, parsed, oldest first."""
    with Session(runtime.engine) as session:
        items = session.exec(select(Outbox).where(col(Outbox.purpose) == "ack")
                             .order_by(col(Outbox.id))).all()
        return [message_from_bytes(item.raw, policy=default) for item in filled(session, items)]


def stockholm(text: str) -> datetime:
    """`text` (ISO 8601, no offset) as Swedish winter time, +01:00; an explicit offset stays."""
    return datetime.fromisoformat(text if "+" in text[10:] else text + "+01:00")


def arrive(runtime: Runtime, raw: bytes, received: str, to: str = "support@example.se") -> str:
    """Store `raw` as received at Stockholm time `received` and process it; its ticket number."""
    stored = store_inbound(runtime.engine, raw, transport="smtp", received_at=stockholm(received),
                           recipients=[to])
    outcome = runtime.processor().process_now(stored.inbound_id)
    assert outcome is not None and outcome.ticket is not None
    return outcome.ticket


def ticket_numbered(runtime: Runtime, number: str) -> Ticket:
    """The ticket called `number`."""
    with Session(runtime.engine) as session:
        return session.exec(select(Ticket).where(col(Ticket.number) == number)).one()
