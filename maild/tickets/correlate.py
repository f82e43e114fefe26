"""Is this message a follow-up of an existing ticket, and may its sender add to it?

A message names a ticket by In-Reply-To/References (a message already on the
ticket, or one maild sent for it) or by the ticket tag in its subject. Naming
a ticket is not enough to join it (anyone can write a tag): the sender must be
a participant of the ticket, a registered contact of its customer, a colleague
at the requester's (non-private) company domain, or reply to a message that
maild itself sent, whose Message-ID only the recipient has seen. And in every
case the sender must be authenticated (maild.trust): an unauthenticated mail
never joins or reopens a ticket; it opens a new one that refers to it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from maild.classify.sender import address_domain, registrable_domain
from maild.parse import ParsedMail
from maild.respond.bounces import OutboxRef
from maild.routing.model import Rules
from maild.tickets.numbering import TicketNumbering


@dataclass(frozen=True)
class TicketRef:
    """What correlation and routing need to know about an existing ticket."""

    id: int
    number: str
    customer: str | None
    policy: str | None
    queue: str | None
    priority: str | None
    language: str
    requester: str | None
    participants: tuple[str, ...]
    private: bool
    status: str = "new"
    closed_at: datetime | None = None


@dataclass(frozen=True)
class MessageMatch:
    """A ticket found through a message id, and whether maild itself sent that message."""

    ticket: TicketRef
    message_id: str
    ours: bool


class TicketLookup(Protocol):
    """Read access to existing tickets, as correlation needs it."""

    def by_number(self, number: str) -> TicketRef | None:
        """The ticket with this number, if any."""

    def by_message_ids(self, message_ids: Sequence[str]) -> MessageMatch | None:
        """The ticket holding (or having sent) one of these message ids, newest id first."""


class NoTickets:
    """A lookup that knows nothing stored: for dry runs without a database."""

    def by_number(self, number: str) -> TicketRef | None:
        """No ticket has any number."""
        return None

    def by_message_ids(self, message_ids: Sequence[str]) -> MessageMatch | None:
        """No message belongs to a ticket."""
        return None

    def acks_to_mailbox(self, mailbox: str, recent: datetime, since: datetime
                        ) -> tuple[int, int]:
        """Nothing was sent."""
        return 0, 0

    def acks_for_domain(self, domain: str, recent: datetime, since: datetime
                        ) -> tuple[int, int]:
        """Nothing was sent."""
        return 0, 0

    def same_text_acknowledged(self, sender: str, mailbox: str, digest: str,
                               since: datetime) -> str | None:
        """No text was acknowledged."""
        return None

    def suppressed(self, address: str, since: datetime) -> str | None:
        """Nothing bounced."""
        return None

    def hold_accounting(self) -> None:
        """Nothing is counted, so nothing is held."""

    def outbox_by_token(self, token: str) -> OutboxRef | None:
        """Nothing was sent."""
        return None

    def outbox_by_message_ids(self, message_ids: Sequence[str]) -> OutboxRef | None:
        """Nothing was sent."""
        return None


@dataclass(frozen=True)
class Correlation:
    """The outcome: the ticket joined (or None), how it was named, and why."""

    ticket: TicketRef | None
    via: str | None
    reason: str
    refused: TicketRef | None = None


def _may_join(ticket: TicketRef, sender: str, rules: Rules, ours: bool) -> tuple[bool, str]:
    if ours:
        return True, "replies to a message maild sent for this ticket"
    if sender in rules.staff:
        return True, f"{sender} is staff"
    if sender in ticket.participants or sender == ticket.requester:
        return True, f"{sender} is a participant of the ticket"
    contact = rules.contact(sender)
    if contact is not None and ticket.customer == contact[0].id:
        return True, f"{sender} is a registered contact of {contact[0].id}"
    if ticket.requester and not ticket.private:
        domain = registrable_domain(address_domain(sender))
        if domain and domain not in rules.private and domain == registrable_domain(
                address_domain(ticket.requester)):
            return True, f"{sender} writes from the requester's company domain {domain}"
    return False, f"{sender} is not a participant of {ticket.number} nor of its customer"


def named_ids(mail: ParsedMail) -> list[str]:
    """The Message-IDs by which `mail` names a ticket: In-Reply-To, then References, newest
    first."""
    return list(mail.in_reply_to) + list(reversed(mail.references))


def names_a_ticket(mail: ParsedMail, numbering: TicketNumbering) -> bool:
    """Whether `mail` names a ticket at all, as `correlate` reads it: by a message it
    answers or by a ticket tag in its subject (which ticket, and whether it exists, is
    `correlate`'s question)."""
    return bool(named_ids(mail)) or bool(numbering.find(mail.subject))


def correlate(mail: ParsedMail, sender: str | None, rules: Rules, lookup: TicketLookup,
              numbering: TicketNumbering, *, trusted: bool, now: datetime | None = None,
              reopen_within: timedelta = timedelta(days=14)) -> Correlation:
    """Find the ticket `mail` follows up, checking that `sender` (`trusted` or not) may add to it.

    A ticket closed longer than `reopen_within` before `now` is not joined: the mail
    opens a new ticket that refers to it.
    """
    candidates: list[tuple[TicketRef, str, bool]] = []
    ids = named_ids(mail)
    if ids:
        match = lookup.by_message_ids(ids)
        if match is not None:
            via = "in-reply-to" if match.message_id in mail.in_reply_to else "references"
            candidates.append((match.ticket, via, match.ours))
    for number in numbering.find(mail.subject):
        ticket = lookup.by_number(number)
        if ticket is not None:
            candidates.append((ticket, "subject-tag", False))
    if not candidates:
        return Correlation(None, None, "names no existing ticket")
    refused: TicketRef | None = None
    refusal = ""
    for ticket, via, ours in candidates:
        if sender is None:
            refused, refusal = ticket, "the message has no sender address"
            continue
        if not trusted:
            refused, refusal = ticket, f"{sender} is not authenticated"
            continue
        allowed, why = _may_join(ticket, sender, rules, ours)
        if allowed and ticket.closed_at is not None and now is not None and (
                now - ticket.closed_at > reopen_within) and sender not in rules.staff:
            allowed = False
            why = (f"{ticket.number} was closed more than {reopen_within.days} days ago "
                   f"({ticket.closed_at.date().isoformat()})")
        if allowed:
            return Correlation(ticket, via, f"{via} names {ticket.number}; {why}")
        refused, refusal = ticket, why
    assert refused is not None
    return Correlation(None, None, f"names {refused.number} but {refusal}: opened as a new "
                       "ticket", refused=refused)
