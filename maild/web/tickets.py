"""The agents' reads: queue counts, the ticket list, one ticket with its conversation.

Every function takes the person asking and returns only what they may see:
an agent's queues, or everything for an administrator. These run in worker
threads (they touch the database); the views await them.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from maild.bytes_apart import inbound_bytes, outbox_bytes
from maild.commands.team import due_today, events, is_overdue
from maild.models import (
    Ticket,
    TicketEvent,
    TicketMessage,
    TicketStatus,
)
from maild.routing.model import Rules
from maild.sla.deadline import open_time_between
from maild.web.mailview import MessageView, attachment_bytes, view_message
from maild.web.users import Person

LIST_LIMIT = 500


class NotAllowed(Exception):
    """The ticket exists but belongs to a queue the person is not a member of."""


class NotFound(Exception):
    """There is no such ticket, message or attachment."""


def visible_queues(person: Person, rules: Rules) -> list[str]:
    """The queues the person works in, in the rules' order."""
    return [queue for queue in rules.queues if person.may_see(queue)]


def queue_counts(engine: Engine, person: Person, rules: Rules, now: datetime
                 ) -> list[dict[str, Any]]:
    """Per visible queue: new, open, waiting on customer, answered, overdue, due today."""
    queues = visible_queues(person, rules)
    counts: dict[str, Counter[str]] = {queue: Counter() for queue in queues}
    with Session(engine) as session:
        query = select(Ticket).where(col(Ticket.status) != TicketStatus.CLOSED)
        if not person.is_admin:
            query = query.where(col(Ticket.queue).in_(queues))
        for ticket in session.exec(query):
            row = counts.setdefault(ticket.queue or "-", Counter())
            row[ticket.status] += 1
            row["overdue"] += is_overdue(ticket, now)
            row["due_today"] += due_today(ticket, now)
    return [{"queue": queue,
             "name": rules.queues[queue].name if queue in rules.queues else queue,
             "new": row[TicketStatus.NEW], "open": row[TicketStatus.OPEN],
             "waiting": row[TicketStatus.WAITING], "answered": row[TicketStatus.ANSWERED],
             "overdue": row["overdue"], "due_today": row["due_today"]}
            for queue, row in counts.items()]


def not_entitled(ticket: Ticket) -> bool:
    """Whether maild withheld the agreement's commitment from the ticket's sender (as yet)."""
    held = (ticket.decision or {}).get("entitlement") or {}
    return held.get("committed") is False and ticket.response_due is None


@dataclass(frozen=True)
class Filters:
    """What the ticket list is narrowed to; empty values do not filter."""

    queue: str = ""
    status: str = ""
    priority: str = ""
    customer: str = ""
    overdue: bool = False
    missing: bool = False
    private: bool = False
    not_entitled: bool = False
    include_closed: bool = False


@dataclass
class TicketPage:
    """One page of the ticket list: the rows shown and how many matched."""

    rows: list[Ticket] = field(default_factory=list)
    total: int = 0


def ticket_list(engine: Engine, person: Person, rules: Rules, filters: Filters,
                now: datetime) -> TicketPage:
    """The visible tickets matching `filters`, soonest deadline first."""
    queues = visible_queues(person, rules)
    with Session(engine) as session:
        query = select(Ticket)
        if not person.is_admin:
            query = query.where(col(Ticket.queue).in_(queues))
        if filters.queue:
            query = query.where(col(Ticket.queue) == filters.queue)
        if filters.status:
            query = query.where(col(Ticket.status) == filters.status)
        elif not filters.include_closed:
            query = query.where(col(Ticket.status) != TicketStatus.CLOSED)
        if filters.priority:
            query = query.where(col(Ticket.priority) == filters.priority)
        if filters.customer:
            query = query.where(col(Ticket.customer) == filters.customer)
        if filters.private:
            query = query.where(col(Ticket.private).is_(True))
        rows = list(session.exec(query))
    if filters.overdue:
        rows = [ticket for ticket in rows if is_overdue(ticket, now)]
    if filters.missing:
        rows = [ticket for ticket in rows if ticket.missing]
    if filters.not_entitled:
        rows = [ticket for ticket in rows if not_entitled(ticket)]
    far = now + timedelta(days=36500)
    rows.sort(key=lambda t: (t.response_due if t.first_response_at is None and t.response_due
                             else far, t.created_at))
    return TicketPage(rows=rows[:LIST_LIMIT], total=len(rows))


@dataclass(frozen=True)
class ConversationItem:
    """One message of the conversation, or a note, in time order."""

    at: datetime
    kind: str                    # "in", "out" or "note"
    role: str
    message_id: int | None
    view: MessageView | None
    note: str = ""
    actor: str = ""


@dataclass(frozen=True)
class SlaClock:
    """Where the ticket stands against its first-response deadline."""

    response_due: datetime | None
    business_left: timedelta | None
    answered_at: datetime | None
    overdue: bool
    warned_at: datetime | None
    response_breached_at: datetime | None
    resolution_due: datetime | None
    resolution_breached_at: datetime | None


@dataclass(frozen=True)
class TicketDetail:
    """Everything the ticket page shows."""

    ticket: Ticket
    conversation: list[ConversationItem]
    events: list[TicketEvent]
    clock: SlaClock


def _visible_ticket(session: Session, person: Person, number: str) -> Ticket:
    ticket = session.exec(select(Ticket).where(
        col(Ticket.number) == number.strip().upper())).first()
    if ticket is None:
        raise NotFound(f"no ticket {number}")
    if not person.may_see(ticket.queue):
        raise NotAllowed(f"{ticket.number} is in queue {ticket.queue}, not one of yours")
    return ticket


def _clock(ticket: Ticket, rules: Rules, now: datetime) -> SlaClock:
    left: timedelta | None = None
    policy = rules.policies.get(ticket.policy or "")
    if ticket.response_due and ticket.first_response_at is None and policy is not None:
        calendar = policy.calendar(ticket.priority)
        left = (open_time_between(now, ticket.response_due, calendar)
                if ticket.response_due > now else -open_time_between(
                    ticket.response_due, now, calendar))
    return SlaClock(response_due=ticket.response_due, business_left=left,
                    answered_at=ticket.first_response_at, overdue=is_overdue(ticket, now),
                    warned_at=ticket.warned_at, response_breached_at=ticket.response_breached_at,
                    resolution_due=ticket.resolution_due,
                    resolution_breached_at=ticket.resolution_breached_at)


def ticket_detail(engine: Engine, person: Person, rules: Rules, number: str,
                  now: datetime) -> TicketDetail:
    """The ticket, its conversation (messages and notes in order), trail and SLA clock."""
    with Session(engine) as session:
        ticket = _visible_ticket(session, person, number)
        assert ticket.id is not None
        items: list[ConversationItem] = []
        for message in session.exec(select(TicketMessage).where(
                col(TicketMessage.ticket_id) == ticket.id)):
            raw = _raw_of(session, message)
            items.append(ConversationItem(
                at=message.created_at, kind=message.direction, role=message.role,
                message_id=message.id, view=view_message(raw) if raw is not None else None))
        trail = events(session, ticket.id)
        for event in trail:
            if event.kind == "note":
                items.append(ConversationItem(at=event.at, kind="note", role="note",
                                              message_id=None, view=None,
                                              note=str(event.detail.get("text", "")),
                                              actor=event.actor))
        items.sort(key=lambda item: item.at)
        session.expunge(ticket)
        return TicketDetail(ticket=ticket, conversation=items, events=trail,
                            clock=_clock(ticket, rules, now))


def _raw_of(session: Session, message: TicketMessage) -> bytes | None:
    if message.inbound_id is not None:
        return inbound_bytes(session, message.inbound_id)
    if message.outbox_id is not None:
        return outbox_bytes(session, message.outbox_id)
    return None


def attachment(engine: Engine, person: Person, number: str, message_id: int,
               index: int) -> tuple[str, bytes]:
    """The name and original bytes of attachment `index` of a message on a visible ticket."""
    with Session(engine) as session:
        ticket = _visible_ticket(session, person, number)
        message = session.get(TicketMessage, message_id)
        if message is None or message.ticket_id != ticket.id:
            raise NotFound("no such message on this ticket")
        raw = _raw_of(session, message)
        found = attachment_bytes(raw, index) if raw is not None else None
        if found is None:
            raise NotFound("no such attachment")
        return found


def ticket_for_action(session: Session, person: Person, number: str) -> Ticket:
    """The ticket an action is for, when the person may work it."""
    return _visible_ticket(session, person, number)
