"""The breach monitor: warns before a response deadline, marks breaches, escalates once.

One pass looks at the open tickets and, at `now`:
- escalates at once a ticket whose priority says so (`escalate_on_open`, ITSL's P1),
  when the ticket has a commitment at all (a suspended customer, an unauthenticated
  or unentitled sender has none);
- warns when `warn_at_percent` of the open time to the response deadline has passed;
- marks a response breach when the deadline passed with no staff response, an
  action breach when the action deadline passed with no staff action (a
  response, an assignment, a note), and a resolution breach when the resolution
  deadline passed with the ticket still open;
- notifies the policy's escalation addresses (else the queue's team) of the
  escalation on open, the warning, and each missed target, once each;
- records each of these as an event in the ticket's trail (ITSL: "full spårbarhet").
Notifications go through the outbox, marked as automatic mail (RFC 3834).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime
from typing import Any, cast

from sqlalchemy import Engine, or_
from sqlalchemy.orm import QueryableAttribute, defer
from sqlmodel import Session, col, select

from maild.classify.loop import LOOP_HEADER
from maild.log import get_logger
from maild.models import OutboxState, Ticket, TicketEvent
from maild.respond import wire
from maild.respond.ack import new_message_id
from maild.respond.address import UnusableAddress
from maild.respond.wording import format_when
from maild.routing.model import Policy, Rules
from maild.sla.deadline import open_time_between
from maild.tickets.lifecycle import record
from maild.tickets.rows import insert_outbox

log = get_logger("maild.sla")


@dataclass(frozen=True)
class MonitorReport:
    """What one pass of the monitor did."""

    escalated: int = 0
    warned: int = 0
    response_breaches: int = 0
    resolution_breaches: int = 0
    last_ticket_id: int = 0  # the highest ticket id the pass looked at (or was told to pass)


def _recipients(policy: Policy, ticket: Ticket, rules: Rules) -> list[str]:
    """The policy's escalation addresses, else the queue's, else the queue's team."""
    if policy.escalation:
        return list(policy.escalation)
    queue = rules.queues.get(ticket.queue or "")
    if queue is None:
        return []
    return list(queue.escalation or queue.team)


def _notify(session: Session, ticket: Ticket, rules: Rules, policy: Policy, *, domain: str,
            headline: str, now: datetime) -> int:
    """Queue one internal notification per recipient; returns how many."""
    assert ticket.id is not None
    sender = rules.default_address.address
    due = format_when(ticket.response_due, "sv") if ticket.response_due else "inget åtagande"
    body = (f"{headline}\n\nÄrende: {ticket.number}\nÄmne: {wire.clean_text(ticket.subject)}\n"
            f"Kund: {ticket.customer or '(ingen)'}\nAvtal: {policy.name} ({policy.id})\n"
            f"Prioritet: {ticket.priority}\nKö: {ticket.queue}\n"
            f"Inkom: {format_when(ticket.created_at, 'sv')}\nSvar senast: {due}\n"
            + (f"Arbetet påbörjas senast: {format_when(ticket.action_due, 'sv')}\n"
               if ticket.action_due else "")
            + (f"Löst senast: {format_when(ticket.resolution_due, 'sv')}\n"
               if ticket.resolution_due else "")
            + f"Avsändare: {ticket.requester or '(okänd)'}\n\n"
            f"Visa ärendet: maild ticket show {ticket.number}\n")
    count = 0
    for recipient in _recipients(policy, ticket, rules):
        message_id = new_message_id(domain)
        try:
            addressing = [wire.addresses("From", [("maild", sender)]),
                          wire.addresses("To", [("", recipient)])]
        except UnusableAddress as error:  # one bad address in the rules stops no other notice
            log.error("sla.address_unusable", ticket=ticket.number, address=recipient[:200],
                      error=str(error))
            continue
        fields = [
            *addressing,
            wire.unstructured("Subject", f"[{ticket.number}][{ticket.priority}] {headline}"),
            wire.token("Date", format_datetime(now)),
            wire.message_ids("Message-ID", [message_id]),
            wire.token("Auto-Submitted", "auto-generated"),
            wire.token("X-Auto-Response-Suppress", "All"),
            wire.token(LOOP_HEADER, domain),
            wire.token("X-Maild-Ticket", ticket.number),
        ]
        insert_outbox(session, [wire.compose_text(fields, body)], ticket_id=ticket.id,
                      purpose="escalation", envelope_sender="", recipient=recipient,
                      message_id=message_id, state=OutboxState.QUEUED, created_at=now,
                      history=[])
        count += 1
    return count


CHUNK = 500
"""Tickets one query of a pass reads: memory for them is held a chunk at a time."""
_UNWATCHED = [defer(cast("QueryableAttribute[Any]", column))
              for column in (Ticket.decision, Ticket.participants, Ticket.missing)]

STAFF_ACTIONS = ("assigned", "note", "response", "review")
"""Trail events that show staff started work on a ticket: the action target is met."""


def _action_taken(session: Session, ticket: Ticket) -> bool:
    """Whether staff did something on the ticket: a response, an assignment, a note, a review."""
    if ticket.first_response_at is not None:
        return True
    return session.exec(select(TicketEvent.id).where(
        col(TicketEvent.ticket_id) == ticket.id, col(TicketEvent.kind).in_(STAFF_ACTIONS),
        col(TicketEvent.actor) != "maild").limit(1)).first() is not None


def _breach(session: Session, ticket: Ticket, rules: Rules, policy: Policy, *, target: str,
            due: datetime, headline: str, domain: str, now: datetime) -> None:
    """Record a missed target in the trail and tell the escalation addresses."""
    sent = _notify(session, ticket, rules, policy, domain=domain, now=now, headline=headline)
    record(session, ticket, actor="maild", kind="sla-breach", at=now, target=target,
           due=due.isoformat(), notified=sent)
    log.bind(ticket=ticket.number, policy=policy.id, priority=ticket.priority).error(
        f"sla.{target}_breached", due=due.isoformat(), notified=sent)


def _tickets_to_watch(session: Session, after: int = 0) -> Iterator[Ticket]:
    """The open tickets above id `after` with a target still to watch, in id order, read
    `CHUNK` at a time.

    A pass holds one chunk of tickets in memory, not every open ticket, and leaves
    the columns it does not look at (the routing decision, participants, what is
    missing) unread.
    """
    while True:
        chunk = session.exec(select(Ticket).options(*_UNWATCHED).where(
            col(Ticket.id) > after,
            col(Ticket.closed_at).is_(None),
            or_(col(Ticket.escalated_at).is_(None),
                col(Ticket.response_breached_at).is_(None),
                col(Ticket.action_breached_at).is_(None),
                col(Ticket.resolution_breached_at).is_(None)),
        ).order_by(col(Ticket.id)).limit(CHUNK).with_for_update(skip_locked=True)).all()
        yield from chunk
        if len(chunk) < CHUNK:
            return
        after = chunk[-1].id or 0


def run_monitor(engine: Engine, rules: Rules, now: datetime, domain: str, *,
                after_id: int = 0) -> MonitorReport:
    """One pass over the open tickets at `now` (a time-zone aware instant).

    With `after_id`, only over the tickets opened after that one: the daemon's pass right
    after new tickets, which need not read every open ticket again.
    """
    escalated = warned = response_breaches = resolution_breaches = 0
    last_ticket_id = after_id
    with Session(engine) as session:
        # Several instances may tick at once: each ticket is looked at by one pass at a time
        # (its row stays locked until this pass commits its notices), so every warning and
        # escalation is sent once cluster-wide. SQLite has one writer and no row locks.
        for ticket in _tickets_to_watch(session, after_id):
            last_ticket_id = max(last_ticket_id, ticket.id or 0)
            policy = rules.policies.get(ticket.policy or "")
            if policy is None:
                continue
            bound = log.bind(ticket=ticket.number, policy=policy.id, priority=ticket.priority)
            target = policy.targets.get(ticket.priority or "")
            responded = ticket.first_response_at is not None
            committed = ticket.response_due is not None or ticket.resolution_due is not None
            if target is not None and target.escalate_on_open and committed and (
                    ticket.escalated_at is None):
                sent = _notify(session, ticket, rules, policy, domain=domain, now=now,
                               headline=f"{ticket.priority} har öppnats och eskaleras direkt")
                record(session, ticket, actor="maild", kind="escalated", at=now,
                       reason=f"{ticket.priority} escalates on open", notified=sent)
                ticket.escalated_at = now
                escalated += 1
                bound.warning("sla.escalated_on_open", notified=sent)
            due = ticket.response_due
            if due is not None and not responded and ticket.response_breached_at is None:
                calendar = policy.calendar(ticket.priority, ticket.queue)
                if due <= now:
                    ticket.response_breached_at = due
                    response_breaches += 1
                    _breach(session, ticket, rules, policy, target="response", due=due,
                            domain=domain, now=now,
                            headline="Svarstiden har passerats utan svar")
                    ticket.escalated_at = ticket.escalated_at or now
                    escalated += 1
                elif policy.warn_at_percent and ticket.warned_at is None:
                    whole = open_time_between(ticket.created_at, due, calendar)
                    used = open_time_between(ticket.created_at, now, calendar)
                    if whole.total_seconds() > 0 and used >= whole * (
                            policy.warn_at_percent / 100):
                        sent = _notify(session, ticket, rules, policy, domain=domain, now=now,
                                       headline=f"{policy.warn_at_percent} % av svarstiden "
                                       "har gått")
                        record(session, ticket, actor="maild", kind="sla-warning", at=now,
                               target="response", due=due.isoformat(),
                               percent=policy.warn_at_percent, notified=sent)
                        ticket.warned_at = now
                        warned += 1
                        bound.warning("sla.warned", due=due.isoformat())
            action_due = ticket.action_due
            if (action_due is not None and action_due <= now
                    and ticket.action_breached_at is None):
                if _action_taken(session, ticket):
                    ticket.action_breached_at = None
                else:
                    ticket.action_breached_at = action_due
                    _breach(session, ticket, rules, policy, target="action", due=action_due,
                            domain=domain, now=now,
                            headline="Tiden för att påbörja arbetet har passerats")
                    escalated += 1
            if (ticket.resolution_due is not None and ticket.resolution_due <= now
                    and ticket.resolution_breached_at is None):
                ticket.resolution_breached_at = ticket.resolution_due
                resolution_breaches += 1
                _breach(session, ticket, rules, policy, target="resolution",
                        due=ticket.resolution_due, domain=domain, now=now,
                        headline="Lösningstiden har passerats och ärendet är inte stängt")
                escalated += 1
            session.add(ticket)
        session.commit()
    return MonitorReport(escalated, warned, response_breaches, resolution_breaches,
                         last_ticket_id)
