"""Closing a ticket, with the post-incident review a policy may require (ITSL's PIR).

ITSL: "För varje avslutat ärende med prioritet hög och kritisk görs en PIR (Post
incident review)". A policy lists the priorities in `review_required`; a ticket
of such a priority closes only when a review text is given, and the review is
an event in the ticket's trail before the status change. A review may be given
for any ticket. The CLI (`maild ticket close --review TEXT`) and the web call
`close_ticket`; nothing else closes a ticket by hand.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from maild.models import Ticket, TicketStatus
from maild.routing.model import Rules
from maild.tickets.lifecycle import record, set_status


class CloseRefused(Exception):
    """The ticket cannot be closed as asked; the message says why and what to do."""


def review_required(ticket: Ticket, rules: Rules) -> bool:
    """Whether the ticket's policy requires a post-incident review at its priority."""
    policy = rules.policies.get(ticket.policy or "")
    return policy is not None and (ticket.priority or "") in policy.review_required


def close_ticket(session: Session, ticket: Ticket, rules: Rules, *, actor: str, at: datetime,
                 reason: str | None = None, review: str | None = None) -> None:
    """Close `ticket` in the caller's transaction, recording the review first when given.

    Raises CloseRefused when the ticket is already closed, or when its policy
    requires a review at its priority and `review` is empty.
    """
    if ticket.status == TicketStatus.CLOSED:
        raise CloseRefused(f"{ticket.number} is already closed")
    text = (review or "").strip()
    if not text and review_required(ticket, rules):
        raise CloseRefused(
            f"{ticket.number} is {ticket.priority} on policy '{ticket.policy}', which requires "
            "a post-incident review before closing: give it with --review TEXT")
    if text:
        record(session, ticket, actor=actor, kind="review", at=at, text=text)
    set_status(session, ticket, TicketStatus.CLOSED, actor=actor, at=at,
               reason=reason or ("closed after post-incident review" if text else "closed"))
