"""What a person does to a ticket: assign, note, reply, change priority, entitle, close, reopen.

These are the only ways a ticket is changed by hand; the `maild ticket`
commands and the web both call them, inside the caller's session, and the
caller commits. Each change is recorded on the ticket's trail with its actor.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, select

from maild.models import OutboxState, Ticket, TicketMessage, TicketStatus
from maild.respond.bounces import new_token, verp_address
from maild.respond.reply import compose_reply
from maild.routing.model import Rules
from maild.tickets.closing import CloseRefused, close_ticket
from maild.tickets.entitle import Entitled, EntitleRefused, entitle_ticket
from maild.tickets.lifecycle import record, set_status
from maild.tickets.numbering import TicketNumbering
from maild.tickets.reprioritise import PriorityChange, PriorityRefused, change_priority
from maild.tickets.rows import insert_outbox


class ActionRefused(Exception):
    """The action does not apply to the ticket as it is; the text says why."""


def assign(session: Session, ticket: Ticket, who: str, *, actor: str, now: datetime) -> None:
    """Give the ticket to `who`; a new ticket becomes open."""
    who = who.strip()
    if not who:
        raise ActionRefused("name someone to assign the ticket to")
    record(session, ticket, actor=actor, kind="assigned", at=now, old=ticket.assignee, new=who)
    ticket.assignee = who
    ticket.updated_at = now
    session.add(ticket)
    if ticket.status == TicketStatus.NEW:
        set_status(session, ticket, TicketStatus.OPEN, actor=actor, at=now,
                   reason=f"assigned to {who}")


def note(session: Session, ticket: Ticket, text: str, *, actor: str, now: datetime) -> None:
    """Add an internal note (never sent to the customer) to the ticket's trail."""
    if not text.strip():
        raise ActionRefused("an internal note needs some text")
    record(session, ticket, actor=actor, kind="note", at=now, text=text.strip())
    ticket.updated_at = now
    session.add(ticket)


def close(session: Session, ticket: Ticket, resolution: str | None, *, actor: str,
          now: datetime, rules: Rules, review: str | None = None) -> None:
    """Close the ticket with its resolution (and review); refused when it is closed already,
    or when its policy requires a post-incident review at its priority and none is given."""
    try:
        close_ticket(session, ticket, rules, actor=actor, at=now,
                     reason=(resolution or "").strip() or None, review=review)
    except CloseRefused as refused:
        raise ActionRefused(str(refused)) from None


def prioritise(session: Session, ticket: Ticket, level: str, *, reason: str, actor: str,
               now: datetime, rules: Rules) -> PriorityChange:
    """Give the ticket another priority for `reason`; deadlines recomputed from its start."""
    try:
        return change_priority(session, ticket, level, rules=rules, reason=reason, actor=actor,
                               at=now)
    except PriorityRefused as refused:
        raise ActionRefused(str(refused)) from None


def entitle(session: Session, ticket: Ticket, *, reason: str, actor: str, now: datetime,
            rules: Rules) -> Entitled:
    """Give the ticket the agreement's commitment maild withheld from its sender."""
    try:
        return entitle_ticket(session, ticket, rules=rules, reason=reason, actor=actor, at=now)
    except EntitleRefused as refused:
        raise ActionRefused(str(refused)) from None


def reopen(session: Session, ticket: Ticket, reason: str | None, *, actor: str,
           now: datetime) -> None:
    """Open a closed (or answered, waiting) ticket again; refused when it is open already."""
    if not set_status(session, ticket, TicketStatus.OPEN, actor=actor, at=now,
                      reason=(reason or "").strip() or "reopened"):
        raise ActionRefused(f"{ticket.number} is already open")


@dataclass(frozen=True)
class ReplyQueued:
    """A reply in the outbox: its item, Message-ID and whether it was the first response."""

    outbox_id: int
    message_id: str
    recipient: str
    first_response: bool


def thread_of(session: Session, ticket: Ticket) -> list[str]:
    """The Message-IDs of the ticket's conversation, oldest first."""
    rows = session.exec(
        select(TicketMessage.message_id)
        .where(col(TicketMessage.ticket_id) == ticket.id,
               col(TicketMessage.message_id).is_not(None),
               col(TicketMessage.role).not_in(["team", "bounce"]))
        .order_by(col(TicketMessage.created_at), col(TicketMessage.id)))
    return [message_id for message_id in rows if message_id]


def _last_customer_message(session: Session, ticket: Ticket) -> str | None:
    row = session.exec(
        select(TicketMessage.message_id)
        .where(col(TicketMessage.ticket_id) == ticket.id, col(TicketMessage.direction) == "in",
               col(TicketMessage.message_id).is_not(None),
               col(TicketMessage.role).in_(["opening", "followup"]))
        .order_by(col(TicketMessage.created_at).desc(), col(TicketMessage.id).desc())).first()
    return row or None


def reply(session: Session, ticket: Ticket, text: str, *, actor: str, rules: Rules,
          numbering: TicketNumbering, domain: str, now: datetime) -> ReplyQueued:
    """Queue a staff reply to the requester; the first one stops the first-response clock."""
    if not text.strip():
        raise ActionRefused("a reply needs some text")
    if not ticket.requester:
        raise ActionRefused(f"{ticket.number} has no requester address to reply to")
    assert ticket.id is not None
    support = (ticket.decision or {}).get("support_address") or rules.default_address.address
    queue = rules.queues.get(ticket.queue or "")
    thread = thread_of(session, ticket)
    last_in = _last_customer_message(session, ticket)
    if last_in and last_in in thread:  # answer the customer's latest message
        thread = [*[m for m in thread if m != last_in], last_in]
    composed = compose_reply(
        ticket=ticket.number, subject=ticket.subject, text=text, recipient=ticket.requester,
        sender=support, sender_name=queue.name if queue else "Support", thread=thread,
        language=ticket.language, numbering=numbering, domain=domain, now=now)
    token = new_token()
    outbox_id = insert_outbox(session, [composed.raw], ticket_id=ticket.id, purpose="reply",
                              envelope_sender=verp_address(support, token),
                              recipient=composed.recipient, message_id=composed.message_id,
                              state=OutboxState.QUEUED, created_at=now, bounce_token=token,
                              history=[])
    session.add(TicketMessage(ticket_id=ticket.id, outbox_id=outbox_id, direction="out",
                              role="reply", message_id=composed.message_id, sender=support,
                              subject=ticket.subject, created_at=now))
    first = ticket.first_response_at is None
    if first:
        ticket.first_response_at = now
    ticket.updated_at = now
    session.add(ticket)
    record(session, ticket, actor=actor, kind="response" if first else "reply", at=now,
           outbox=outbox_id, to=composed.recipient)
    set_status(session, ticket, TicketStatus.ANSWERED, actor=actor, at=now,
               reason="staff replied to the customer")
    return ReplyQueued(outbox_id=outbox_id, message_id=composed.message_id,
                       recipient=composed.recipient, first_response=first)
