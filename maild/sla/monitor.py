"""The breach monitor: warns before a response deadline, marks breaches, escalates once.

One pass looks at the open tickets and, at `now`:
- escalates at once a ticket whose priority says so (`escalate_on_open`, ITSL's P1),
  when the ticket has a commitment at all (a suspended customer, an unauthenticated
  or unentitled sender has none);
- warns when `warn_at_percent` of the open time to the response deadline has passed;
- marks a response breach when the deadline passed with no staff response, and a
  resolution breach when the resolution deadline passed with the ticket still open;
- notifies the policy's escalation addresses (else the queue's team) once per ticket.
Notifications go through the outbox, marked as automatic mail (RFC 3834).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from email.mime.text import MIMEText
from email.policy import compat32
from email.utils import format_datetime, formataddr

from sqlalchemy import Engine, or_
from sqlmodel import Session, col, select

from maild.classify.loop import LOOP_HEADER
from maild.log import get_logger
from maild.models import Outbox, OutboxState, Ticket
from maild.respond.ack import new_message_id
from maild.respond.wording import format_when
from maild.routing.model import Policy, Rules
from maild.sla.deadline import open_time_between

log = get_logger("maild.sla")
_WIRE = compat32.clone(linesep="\r\n")


@dataclass(frozen=True)
class MonitorReport:
    """What one pass of the monitor did."""

    escalated: int = 0
    warned: int = 0
    response_breaches: int = 0
    resolution_breaches: int = 0


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
    body = (f"{headline}\n\nÄrende: {ticket.number}\nÄmne: {ticket.subject}\n"
            f"Kund: {ticket.customer or '(ingen)'}\nAvtal: {policy.name} ({policy.id})\n"
            f"Prioritet: {ticket.priority}\nKö: {ticket.queue}\n"
            f"Inkom: {format_when(ticket.created_at, 'sv')}\nSvar senast: {due}\n"
            f"Avsändare: {ticket.requester or '(okänd)'}\n\n"
            f"Visa ärendet: maild ticket show {ticket.number}\n")
    count = 0
    for recipient in _recipients(policy, ticket, rules):
        message = MIMEText(body, "plain", "utf-8")
        message_id = new_message_id(domain)
        message["From"] = formataddr(("maild", sender))
        message["To"] = recipient
        message["Subject"] = f"[{ticket.number}][{ticket.priority}] {headline}"
        message["Date"] = format_datetime(now)
        message["Message-ID"] = f"<{message_id}>"
        message["Auto-Submitted"] = "auto-generated"
        message["X-Auto-Response-Suppress"] = "All"
        message[LOOP_HEADER] = domain
        message["X-Maild-Ticket"] = ticket.number
        session.add(Outbox(ticket_id=ticket.id, purpose="escalation", envelope_sender="",
                           recipient=recipient, message_id=message_id,
                           raw=message.as_bytes(policy=_WIRE), state=OutboxState.QUEUED,
                           created_at=now))
        count += 1
    return count


def run_monitor(engine: Engine, rules: Rules, now: datetime, domain: str) -> MonitorReport:
    """One pass over the open tickets at `now` (a time-zone aware instant)."""
    escalated = warned = response_breaches = resolution_breaches = 0
    with Session(engine) as session:
        tickets = session.exec(select(Ticket).where(
            col(Ticket.closed_at).is_(None),
            or_(col(Ticket.escalated_at).is_(None),
                col(Ticket.resolution_breached_at).is_(None)),
        )).all()
        for ticket in tickets:
            policy = rules.policies.get(ticket.policy or "")
            if policy is None:
                continue
            bound = log.bind(ticket=ticket.number, policy=policy.id, priority=ticket.priority)
            target = policy.targets.get(ticket.priority or "")
            responded = ticket.first_response_at is not None
            committed = ticket.response_due is not None or ticket.resolution_due is not None
            if target is not None and target.escalate_on_open and committed and (
                    ticket.escalated_at is None):
                _notify(session, ticket, rules, policy, domain=domain, now=now,
                        headline=f"{ticket.priority} har öppnats och eskaleras direkt")
                ticket.escalated_at = now
                escalated += 1
                bound.warning("sla.escalated_on_open")
            due = ticket.response_due
            if due is not None and not responded and ticket.response_breached_at is None:
                calendar = policy.calendar(ticket.priority)
                if due <= now:
                    ticket.response_breached_at = due
                    response_breaches += 1
                    bound.error("sla.response_breached", due=due.isoformat())
                    if ticket.escalated_at is None:
                        _notify(session, ticket, rules, policy, domain=domain, now=now,
                                headline="Svarstiden har passerats utan svar")
                        ticket.escalated_at = now
                        escalated += 1
                elif policy.warn_at_percent and ticket.warned_at is None:
                    whole = open_time_between(ticket.created_at, due, calendar)
                    used = open_time_between(ticket.created_at, now, calendar)
                    if whole.total_seconds() > 0 and used >= whole * (
                            policy.warn_at_percent / 100):
                        _notify(session, ticket, rules, policy, domain=domain, now=now,
                                headline=f"{policy.warn_at_percent} % av svarstiden har gått")
                        ticket.warned_at = now
                        warned += 1
                        bound.warning("sla.warned", due=due.isoformat())
            if (ticket.resolution_due is not None and ticket.resolution_due <= now
                    and ticket.resolution_breached_at is None):
                ticket.resolution_breached_at = ticket.resolution_due
                resolution_breaches += 1
                bound.error("sla.resolution_breached", due=ticket.resolution_due.isoformat())
            session.add(ticket)
        session.commit()
    return MonitorReport(escalated, warned, response_breaches, resolution_breaches)
