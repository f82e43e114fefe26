"""Delivery to the team: the customer's message as it was, with a short summary on top.

The original is attached whole (message/rfc822), so its text, HTML and
attachments reach the team byte for byte. Headers let the team's mail client
sort and filter; Reply-To names the customer and the support address, so a
reply from the team reaches the customer with the ticket tag and maild sees it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

from maild.classify.loop import LOOP_HEADER
from maild.log import get_logger
from maild.models import Ticket
from maild.respond import wire
from maild.respond.ack import ComposedMail, new_message_id
from maild.respond.address import UnusableAddress, mail_address
from maild.respond.wording import format_when
from maild.routing.model import Rules
from maild.tickets.numbering import TicketNumbering
from maild.tickets.subject import strip_prefixes
from maild.tickets.ticket_row import TicketRow

log = get_logger("maild.team")

_ITEM_WORDS_SV = {
    "description": "beskrivning", "screenshot": "skärmbild", "occurred_at": "tidpunkt",
    "browser": "webbläsare och version", "os": "operativsystem och version",
    "campaign_number": "kampanjnummer", "company": "företag",
    "contact_name_title": "namn och befattning", "contact_details": "kontaktuppgifter",
}


def summary(ticket: Ticket | TicketRow, rules: Rules, *, priority_reason: str, role: str,
            sender: str | None) -> str:
    """The few lines on top that tell the team what this is."""
    customer = rules.customers.get(ticket.customer or "")
    policy = rules.policies.get(ticket.policy or "")
    lines = []
    if ticket.private and customer is None:
        lines.append("OBS: privat adress, inte en registrerad kontakt hos någon kund.")
    elif ticket.private:
        lines.append("OBS: privat adress (registrerad kontakt).")
    flag = ((ticket.decision or {}).get("entitlement") or {}).get("flag")
    if flag:  # maild.trust: unauthenticated, not entitled, suspended, no agreement
        lines.append(f"OBS: {flag}".replace("NUMMER", ticket.number))
    elif customer is not None and customer.contacts and sender not in {
            contact.address for contact in customer.contacts}:
        lines.append(f"OBS: {sender} är inte en registrerad kontakt hos {customer.name}.")
    due = format_when(ticket.response_due, "sv") if ticket.response_due else "inget åtagande"
    missing = ", ".join(_ITEM_WORDS_SV.get(item, item) for item in (ticket.missing or []))
    lines += [
        f"Ärende:     {ticket.number}" + ("  (uppföljning från kunden)" if role == "followup"
                                            else ""),
        f"Kund:       {customer.name if customer else '(inget avtal)'}"
        + (f" / {policy.name}" if policy else ""),
        f"Prioritet:  {ticket.priority} ({priority_reason})",
        f"Svar senast: {due}",
        f"Saknas:     {missing or 'inget'}",
        f"Från:       {sender or '(okänd)'}",
        "",
        "Svara kunden genom att svara på det här mejlet: svaret går till kunden och",
        "registreras på ärendet. Kundens meddelande är bifogat som det kom in.",
    ]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class TeamCopy:
    """One team address's copy, as the parts its bytes are joined from."""

    parts: list[bytes]
    message_id: str
    recipient: str


def compose_team_delivery(*, ticket: Ticket | TicketRow, rules: Rules, raw: bytes,
                          original_subject: str, sender: str | None, priority_reason: str,
                          role: str, support_address: str, numbering: TicketNumbering,
                          domain: str, now: datetime, opaque: bool = False
                          ) -> list[ComposedMail]:
    """One message per team address of the ticket's queue (none when the queue has no team).

    `opaque`: the original is attached as a file, not as a message (its MIME structure
    nests too deep for a mail reader's parser).
    """
    return [ComposedMail(raw=b"".join(copy.parts), message_id=copy.message_id,
                         recipient=copy.recipient)
            for copy in compose_team_copies(
                ticket=ticket, rules=rules, raw=raw, original_subject=original_subject,
                sender=sender, priority_reason=priority_reason, role=role,
                support_address=support_address, numbering=numbering, domain=domain, now=now,
                opaque=opaque)]


def compose_team_copies(*, ticket: Ticket | TicketRow, rules: Rules, raw: bytes,
                        original_subject: str, sender: str | None, priority_reason: str,
                        role: str, support_address: str, numbering: TicketNumbering,
                        domain: str, now: datetime, opaque: bool = False) -> list[TeamCopy]:
    """`compose_team_delivery` with each copy as its parts: `raw` itself is not copied."""
    queue = rules.queues.get(ticket.queue or "")
    if queue is None or not queue.team:
        return []
    clean = strip_prefixes(original_subject, numbering)
    subject = f"[{ticket.number}][{ticket.priority}] {clean}".strip()
    reply_to = [("", support_address)]
    if sender and _writable(sender):
        reply_to.insert(0, ("", sender))
    summary_text = summary(ticket, rules, priority_reason=priority_reason, role=role,
                           sender=sender)
    body = wire.body_with_original(summary_text, raw, opaque=opaque)  # the same for each
    delivered = []
    for address in queue.team:
        if not _usable(address, ticket.number):
            continue
        message_id = new_message_id(domain)
        fields = [
            _from_field(support_address),
            _to_field(address),
            wire.addresses("Reply-To", reply_to),
            wire.unstructured("Subject", subject),
            wire.date(now),
            wire.message_ids("Message-ID", [message_id]),
            _AUTO_SUBMITTED,
            _loop_field(domain),
            wire.token("X-Maild-Ticket", ticket.number),
            wire.token("X-Maild-Queue", ticket.queue or "-"),
            wire.token("X-Maild-Priority", ticket.priority or "-"),
            wire.token("X-Maild-Customer", ticket.customer or "-"),
        ]
        delivered.append(TeamCopy([wire.head(fields), *body], message_id=message_id,
                                  recipient=address))
    return delivered


# The fields that are the same for every copy from one support address to one team
# address, written once (each is the function of `wire` it names, of the same values).
_AUTO_SUBMITTED = wire.token("Auto-Submitted", "auto-generated")


@lru_cache(maxsize=64)
def _from_field(support_address: str) -> str:
    return wire.addresses("From", [("maild", support_address)])


@lru_cache(maxsize=256)
def _to_field(team_address: str) -> str:
    return wire.addresses("To", [("", team_address)])


@lru_cache(maxsize=64)
def _loop_field(domain: str) -> str:
    return wire.token(LOOP_HEADER, domain)


def _usable(address: str, ticket: str) -> bool:
    """Whether a team address from the rules can be written; one that cannot is logged, skipped."""
    try:
        mail_address(address)
    except UnusableAddress as error:
        log.error("team.address_unusable", ticket=ticket, address=address[:200],
                  error=str(error))
        return False
    return True


def _writable(address: str) -> bool:
    """Whether `address` can go in Reply-To without making the copy need an SMTPUTF8 relay.

    An address that cannot be written, or has a non-ASCII local part, is left out
    (the summary still names the sender): the team's copy must reach the team.
    """
    try:
        return not mail_address(address).needs_smtputf8
    except UnusableAddress:
        return False
