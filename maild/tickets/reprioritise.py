"""Staff change a ticket's priority: new deadlines from the ticket's start, and an event.

The agreements let the provider set the level after reading the case (SoftOne:
"Denna prioritet tilldelas även prioritet 1 och 2 ärenden, där en alternativ
lösning kan tillhandahållas"). The response and resolution deadlines are
computed again under the new level from when the ticket arrived, as if it had
come in at that level. A ticket that was given no commitment (no deadline at
its first level, where the policy has one) keeps none. Breach and warning
marks follow the new deadlines: a breach that the new deadline no longer
makes one is cleared; a warning is cleared while the new deadline lies ahead,
so the monitor warns again for it. An escalation that happened stays; moving
to a level that escalates at once (ITSL's P1) escalates at the monitor's next
pass when the ticket was never escalated.
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


class PriorityRefused(ValueError):
    """The change cannot be made; the text says why, for the person who asked."""


@dataclass(frozen=True)
class PriorityChange:
    """What a priority change did to a ticket."""

    ticket: str
    old: str | None
    new: str
    reason: str
    response_due: datetime | None
    resolution_due: datetime | None
    old_response_due: datetime | None
    old_resolution_due: datetime | None


def resolve_level(rules: Rules, ticket: Ticket, level: str) -> str:
    """The ticket's policy's level named `level` (case-insensitive); PriorityRefused if none."""
    policy = rules.policies.get(ticket.policy or "")
    if policy is None:
        raise PriorityRefused(f"{ticket.number} has policy '{ticket.policy}', which the rules "
                              "do not define: its priority cannot be changed")
    wanted = level.strip()
    for known in policy.priorities:
        if known.casefold() == wanted.casefold():
            return known
    raise PriorityRefused(f"'{wanted}' is not a priority of policy {policy.id} "
                          f"({ticket.number}): choose one of {', '.join(policy.priorities)}")


def _breach_after(due: datetime | None, breached: datetime | None, done: datetime | None,
                  now: datetime) -> datetime | None:
    """The breach mark under deadline `due`: kept only if `due` was missed by `done` or now."""
    if breached is None or due is None:
        return None
    if (done if done is not None else now) <= due:
        return None
    return due


def change_priority(session: Session, ticket: Ticket, level: str, *, rules: Rules, reason: str,
                    actor: str, at: datetime) -> PriorityChange:
    """Give `ticket` priority `level` for `reason`, recompute its deadlines, record the event.

    Works inside the caller's transaction. Raises PriorityRefused for a level
    the ticket's policy does not have, the level it already has, or no reason.
    """
    if not reason.strip():
        raise PriorityRefused("say why the priority changes (--reason): it is kept on the "
                              "ticket's trail")
    new = resolve_level(rules, ticket, level)
    if new == ticket.priority:
        raise PriorityRefused(f"{ticket.number} already has priority {new}")
    policy = rules.policies[ticket.policy or ""]
    old = ticket.priority
    old_response, old_resolution = ticket.response_due, ticket.resolution_due
    committed = ticket.response_due is not None or deadlines(
        policy, old, ticket.created_at, ticket.queue).response is None
    terms = deadlines(policy, new, ticket.created_at, ticket.queue)
    response, action, resolution = ((terms.response, terms.action, terms.resolution)
                                    if committed else (None, None, None))
    ticket.priority = new
    ticket.response_due, ticket.resolution_due = response, resolution
    ticket.action_due = action
    ticket.response_breached_at = _breach_after(
        response, ticket.response_breached_at, ticket.first_response_at, at)
    ticket.resolution_breached_at = _breach_after(
        resolution, ticket.resolution_breached_at, ticket.closed_at, at)
    ticket.action_breached_at = _breach_after(
        action, ticket.action_breached_at, ticket.first_response_at, at)
    if response is None or (ticket.first_response_at is None and response > at):
        ticket.warned_at = None
    ticket.updated_at = at
    session.add(ticket)
    record(session, ticket, actor=actor, kind="priority", at=at, old=old, new=new,
           reason=reason.strip(),
           response_due=response.isoformat() if response else "none",
           resolution_due=resolution.isoformat() if resolution else None,
           was_response_due=old_response.isoformat() if old_response else None,
           no_commitment=None if committed else True)
    log.info("ticket.priority_changed", ticket=ticket.number, old=old, new=new, actor=actor,
             reason=reason.strip(), response_due=response.isoformat() if response else None)
    return PriorityChange(ticket=ticket.number, old=old, new=new, reason=reason.strip(),
                          response_due=response, resolution_due=resolution,
                          old_response_due=old_response, old_resolution_due=old_resolution)
