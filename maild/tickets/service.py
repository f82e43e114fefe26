"""Applying a decision: ticket, its messages and the acknowledgement in one transaction."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlmodel import Session, col

from maild.models import Inbound, Outbox, OutboxState, Ticket, TicketMessage
from maild.parse import ParsedMail
from maild.pipeline import Decision
from maild.respond.ack import compose_ack
from maild.routing.model import Rules
from maild.tickets.correlate import MessageMatch, TicketRef
from maild.tickets.numbering import TicketNumbering, allocate_number


def ticket_ref(ticket: Ticket) -> TicketRef:
    """The correlation view of a ticket row."""
    assert ticket.id is not None
    return TicketRef(
        id=ticket.id, number=ticket.number, customer=ticket.customer, policy=ticket.policy,
        queue=ticket.queue, priority=ticket.priority, language=ticket.language,
        requester=ticket.requester, participants=tuple(ticket.participants or ()),
        private=ticket.private,
    )


class DatabaseTickets:
    """The ticket lookup of correlation, answered from the database."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def by_number(self, number: str) -> TicketRef | None:
        """The ticket with `number`, if any."""
        ticket = self.session.scalars(
            select(Ticket).where(col(Ticket.number) == number.upper())
        ).first()
        return ticket_ref(ticket) if ticket else None

    def by_message_ids(self, message_ids: Sequence[str]) -> MessageMatch | None:
        """The ticket that holds, or sent, the first of `message_ids` that maild knows."""
        if not message_ids:
            return None
        wanted = list(dict.fromkeys(message_ids))[:50]
        found: dict[str, tuple[int, bool]] = {}
        for row in self.session.execute(
            select(col(TicketMessage.message_id), col(TicketMessage.ticket_id))
            .where(col(TicketMessage.message_id).in_(wanted))
        ):
            found.setdefault(row[0], (row[1], False))
        for row in self.session.execute(
            select(col(Outbox.message_id), col(Outbox.ticket_id))
            .where(col(Outbox.message_id).in_(wanted))
        ):
            if row[1] is not None:
                found[row[0]] = (row[1], True)
        for message_id in wanted:
            if message_id in found:
                ticket_id, ours = found[message_id]
                ticket = self.session.get(Ticket, ticket_id)
                if ticket is not None:
                    return MessageMatch(ticket_ref(ticket), message_id, ours)
        return None


@dataclass(frozen=True)
class Applied:
    """What applying a decision created."""

    ticket: str | None
    outbox_id: int | None


def _participants(mail: ParsedMail, rules: Rules, existing: Sequence[str]) -> list[str]:
    people = [address.address.lower() for address in
              ((mail.sender,) if mail.sender else ()) + mail.reply_to + mail.cc + mail.to]
    people = [p for p in people if rules.support_address(p) is None]
    return list(dict.fromkeys([*existing, *people]))[:50]


def apply_decision(
    session: Session,
    inbound: Inbound,
    mail: ParsedMail,
    decision: Decision,
    *,
    rules: Rules,
    numbering: TicketNumbering,
    domain: str,
    now: datetime,
) -> Applied:
    """Write what `decision` says inside the caller's transaction; fills in `decision.ticket`."""
    assert inbound.id is not None
    if decision.kind == "followup":
        ticket = session.scalars(select(Ticket).where(
            col(Ticket.number) == decision.ticket)).one()
        ticket.updated_at = now
        ticket.participants = _participants(mail, rules, ticket.participants or [])
        session.add(ticket)
        session.flush()
        assert ticket.id is not None
        session.add(TicketMessage(
            ticket_id=ticket.id, inbound_id=inbound.id, direction="in", role="followup",
            message_id=mail.message_id, sender=decision.sender, subject=mail.subject,
            created_at=now))
        inbound.ticket_id = ticket.id
        return Applied(ticket=ticket.number, outbox_id=None)
    if decision.kind != "new":
        return Applied(ticket=None, outbox_id=None)

    number = allocate_number(session, numbering, inbound.received_at.year)
    decision.ticket = number
    ticket = Ticket(
        number=number,
        subject=mail.subject or "",
        requester=decision.sender,
        requester_name=decision.details.get("sender_name") or None,
        customer=decision.customer,
        policy=decision.policy,
        queue=decision.queue,
        priority=decision.priority,
        private=decision.private,
        language=decision.details.get("language") or "sv",
        status="new",
        created_at=inbound.received_at,
        updated_at=now,
        response_due=datetime.fromisoformat(decision.response_due)
        if decision.response_due else None,
        missing=decision.missing,
        participants=_participants(mail, rules, []),
    )
    session.add(ticket)
    session.flush()
    assert ticket.id is not None
    session.add(TicketMessage(
        ticket_id=ticket.id, inbound_id=inbound.id, direction="in", role="opening",
        message_id=mail.message_id, sender=decision.sender, subject=mail.subject,
        created_at=inbound.received_at))
    inbound.ticket_id = ticket.id
    outbox_id: int | None = None
    if decision.ack:
        composed = compose_ack(
            rules=rules, decision=decision, ticket=number,
            original_message_id=mail.message_id, original_references=mail.references,
            numbering=numbering, domain=domain, now=now)
        item = Outbox(ticket_id=ticket.id, inbound_id=inbound.id, purpose="ack",
                      envelope_sender=composed.envelope_sender, recipient=composed.recipient,
                      message_id=composed.message_id, raw=composed.raw,
                      state=OutboxState.QUEUED, created_at=now)
        session.add(item)
        session.flush()
        outbox_id = item.id
        session.add(TicketMessage(
            ticket_id=ticket.id, outbox_id=outbox_id, direction="out", role="ack",
            message_id=composed.message_id, sender=decision.details.get("support_address"),
            subject=None, created_at=now))
    ticket.decision = decision.to_json()
    session.add(ticket)
    return Applied(ticket=number, outbox_id=outbox_id)
