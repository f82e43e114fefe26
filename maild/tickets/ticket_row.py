"""A ticket as plain values, read and written with Core statements on the processing path.

Processing opens a ticket or adds a follow-up to one for every message; an ORM
object and its unit of work cost more there than everything else the write
does. A `TicketRow` holds the same columns as `maild.models.Ticket`; it is
inserted whole, and an existing one is written back column by column, only
what changed since it was read (as the ORM's flush would).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select
from sqlmodel import Session

from maild.json_columns import SerializedJson
from maild.models import Ticket, table_of
from maild.prepared import Prepared
from maild.tickets.rows import insert_statement

_TICKET = table_of(Ticket)


@dataclass
class TicketRow:
    """Every column of a ticket row; `id` is None until it is inserted."""

    number: str
    subject: str
    created_at: datetime
    updated_at: datetime
    id: int | None = None
    requester: str | None = None
    requester_name: str | None = None
    customer: str | None = None
    policy: str | None = None
    queue: str | None = None
    priority: str | None = None
    private: bool = False
    language: str = "sv"
    status: str = "new"
    assignee: str | None = None
    refers_to: str | None = None
    response_due: datetime | None = None
    resolution_due: datetime | None = None
    action_due: datetime | None = None
    first_response_at: datetime | None = None
    response_breached_at: datetime | None = None
    resolution_breached_at: datetime | None = None
    action_breached_at: datetime | None = None
    warned_at: datetime | None = None
    escalated_at: datetime | None = None
    closed_at: datetime | None = None
    missing: list[str] | None = None
    participants: list[str] | None = None
    decision: dict[str, Any] | None = None
    # The columns as they were read or inserted: what `save_ticket` compares with.
    _read: dict[str, Any] = field(default_factory=dict, init=False, repr=False, compare=False)

    def values(self) -> dict[str, Any]:
        """The row's columns by name."""
        return {name: getattr(self, name) for name in COLUMNS}


COLUMNS: tuple[str, ...] = tuple(item.name for item in fields(TicketRow)
                                 if not item.name.startswith("_"))
_BY_NUMBER = Prepared(select(*(_TICKET.c[name] for name in COLUMNS)).where(
    _TICKET.c.number == bindparam("ticket_number")))
# The columns to set come with each execution's parameters: only those that changed.
_UPDATE = Prepared(_TICKET.update().where(_TICKET.c.id == bindparam("ticket_id")))


def insert_ticket(session: Session, ticket: TicketRow, *,
                  decision_json: SerializedJson | None = None) -> int:
    """Insert `ticket` in the session's transaction; sets and returns its id.

    `decision_json`, when given, is `serialized(ticket.decision)`, written as it is.
    """
    values = ticket.values()
    inserted = dict(values)  # what `save_ticket` compares with, once the id is known
    del values["id"]
    if decision_json is not None:
        values["decision"] = decision_json
    key = insert_statement(Ticket).run(session, values).inserted_key
    assert key is not None
    ticket.id = inserted["id"] = int(key)
    ticket._read = inserted
    return ticket.id


def load_ticket(session: Session, number: str) -> TicketRow:
    """The ticket numbered `number` (raises NoResultFound when there is none)."""
    row = _BY_NUMBER.run(session, {"ticket_number": number}).one()
    ticket = TicketRow(**row._asdict())
    ticket._read = ticket.values()
    return ticket


def save_ticket(session: Session, ticket: TicketRow) -> None:
    """Write the columns of `ticket` that changed since it was read or inserted."""
    assert ticket.id is not None
    now = ticket.values()
    changed = {name: value for name, value in now.items() if value != ticket._read[name]}
    if not changed:
        return
    _UPDATE.send(session, {"ticket_id": ticket.id, **changed})
    ticket._read = now
