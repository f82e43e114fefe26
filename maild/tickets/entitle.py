"""Staff entitle a ticket: the agreement's commitment that maild withheld from its sender.

A sender who was not authenticated, or not a named contact where the policy
entitles only those, gets a ticket without deadlines. Once staff have checked
the sender, the ticket gets the priority its mail asked for and deadlines
computed from its start, as if the sender had been entitled from the first.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session

from maild.log import get_logger
from maild.models import Ticket
from maild.routing.model import Rules
from maild.sla.policy_clock import deadlines
from maild.tickets.lifecycle import record

log = get_logger("maild.tickets")


class EntitleRefused(Exception):
    """The ticket cannot be entitled; the message says why."""


@dataclass(frozen=True)
class Entitled:
    """What entitling a ticket gave it."""

    ticket: str
    priority: str
    response_due: datetime | None


def entitle_ticket(session: Session, ticket: Ticket, *, rules: Rules, reason: str, actor: str,
                   at: datetime) -> Entitled:
    """Give `ticket` its agreement's commitment and record why; inside the caller's transaction."""
    if not reason.strip():
        raise EntitleRefused("say why the sender is entitled (--reason): it is kept on the "
                             "ticket's trail")
    decision = dict(ticket.decision or {})
    held = decision.get("entitlement") or {}
    customer = rules.customers.get(ticket.customer or "")
    policy = rules.policies.get(ticket.policy or "")
    if customer is None or policy is None:
        raise EntitleRefused(f"{ticket.number} has no customer agreement to entitle it to")
    if customer.status != "active":
        raise EntitleRefused(f"{ticket.number}: customer {customer.id} is {customer.status}; "
                             f"set status = \"active\" in its rules file first")
    if held.get("committed", True) or ticket.response_due is not None:
        raise EntitleRefused(f"{ticket.number} already has the agreement's commitment")
    requested = decision.get("priority_requested")
    priority = requested if requested in policy.priorities else (
        ticket.priority or policy.default_priority)
    due = deadlines(policy, priority, ticket.created_at, ticket.queue)
    record(session, ticket, actor=actor, kind="entitled", at=at, reason=reason.strip(),
           was=held.get("status"), old_priority=ticket.priority, priority=priority,
           response_due=due.response.isoformat() if due.response else None)
    decision["entitlement"] = {**held, "status": "entitled-by-staff", "entitled": True,
                               "committed": True, "prioritised": True, "flag": None,
                               "reason": f"entitled by {actor}: {reason.strip()}"}
    decision["priority"] = priority
    decision["response_due"] = due.response.isoformat() if due.response else None
    decision["resolution_due"] = due.resolution.isoformat() if due.resolution else None
    decision["action_due"] = due.action.isoformat() if due.action else None
    ticket.decision = decision
    ticket.priority = priority
    ticket.response_due, ticket.resolution_due = due.response, due.resolution
    ticket.action_due = due.action
    ticket.updated_at = at
    session.add(ticket)
    log.info("ticket.entitled", ticket=ticket.number, by=actor, priority=priority,
             reason=reason.strip())
    return Entitled(ticket.number, priority, due.response)
