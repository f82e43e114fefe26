"""Recording the first response on a ticket, and clearing a breach it proves wrong."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from maild.models import Ticket
from maild.tickets.lifecycle import record
from maild.tickets.ticket_row import TicketRow


def record_first_response(session: Session, ticket: Ticket | TicketRow, *, at: datetime,
                          actor: str, **detail: object) -> bool:
    """Set the first response at `at` and record it; False when one was recorded already.

    A response in time clears a response breach the monitor marked before the
    response was recorded (answered by phone, recorded afterwards): the ledger
    then counts the case as answered in time, and the trail says so. A
    `TicketRow` is changed in memory only: its holder saves it (`save_ticket`).
    """
    if ticket.first_response_at is not None:
        return False
    ticket.first_response_at = at
    ticket.updated_at = max(ticket.updated_at, at)
    if isinstance(ticket, Ticket):
        session.add(ticket)
    record(session, ticket, actor=actor, kind="response", at=at, **detail)
    if (ticket.response_breached_at is not None and ticket.response_due is not None
            and at <= ticket.response_due):
        record(session, ticket, actor=actor, kind="breach-cleared", at=at, target="response",
               due=ticket.response_due.isoformat(),
               reason="the response was given in time; it was recorded after the deadline")
        ticket.response_breached_at = None
    return True
