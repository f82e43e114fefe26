"""The life of a ticket: its status changes, each recorded with who or what and when.

new → open → waiting-on-customer (missing information asked for) → answered →
closed. A customer's follow-up on a closed ticket reopens it within the
reopen window; later it opens a new ticket that refers to the old one.
Every change, and every message, assignment and note, is a `TicketEvent`:
the ticket's trail from start to close.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session

from maild.models import Ticket, TicketEvent, TicketStatus
from maild.tickets.rows import send_row
from maild.tickets.ticket_row import TicketRow


def record(session: Session, ticket: Ticket | TicketRow, *, actor: str, kind: str, at: datetime,
           **detail: Any) -> None:
    """Add one event to the ticket's trail (in the caller's transaction)."""
    assert ticket.id is not None
    send_row(session, TicketEvent, ticket_id=ticket.id, at=at, actor=actor, kind=kind,
             detail={key: value for key, value in detail.items() if value is not None})


@dataclass(frozen=True)
class StatusChange:
    """A change of a ticket's status, as its trail records it."""

    old: str
    new: str
    actor: str
    at: datetime
    reason: str


def change_status(ticket: Ticket | TicketRow, status: str, *, actor: str, at: datetime,
                  reason: str) -> StatusChange | None:
    """Move `ticket` to `status` in memory; the change to record, None when it already was there.

    For a ticket that is not written yet: it is written with its status, and the change
    recorded (`record_status`) once it is.
    """
    if status not in TicketStatus.ALL:
        raise ValueError(f"unknown status {status!r}; statuses: {', '.join(TicketStatus.ALL)}")
    if ticket.status == status:
        return None
    change = StatusChange(old=ticket.status, new=status, actor=actor, at=at, reason=reason)
    ticket.status = status
    ticket.closed_at = at if status == TicketStatus.CLOSED else None
    ticket.updated_at = at
    return change


def record_status(session: Session, ticket: Ticket | TicketRow, change: StatusChange) -> None:
    """Add a status change to the ticket's trail."""
    record(session, ticket, actor=change.actor, kind="status", at=change.at, old=change.old,
           new=change.new, reason=change.reason)


def set_status(session: Session, ticket: Ticket | TicketRow, status: str, *, actor: str,
               at: datetime, reason: str) -> bool:
    """Move the ticket to `status` and record it; False when it already was there.

    A `TicketRow` is changed in memory only: its holder saves it (`save_ticket`).
    """
    change = change_status(ticket, status, actor=actor, at=at, reason=reason)
    if change is None:
        return False
    record_status(session, ticket, change)
    if isinstance(ticket, Ticket):
        session.add(ticket)
    return True
