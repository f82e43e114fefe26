"""Delivery to the team: the customer's message as it was, with a short summary on top.

The original is attached whole (message/rfc822), so its text, HTML and
attachments reach the team byte for byte. Headers let the team's mail client
sort and filter; Reply-To names the customer and the support address, so a
reply from the team reaches the customer with the ticket tag and maild sees it.
"""

from __future__ import annotations

from datetime import datetime
from email.message import Message
from email.mime.base import MIMEBase
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.policy import compat32
from email.utils import format_datetime, formataddr

from maild.classify.loop import LOOP_HEADER
from maild.models import Ticket
from maild.respond.ack import ComposedMail, new_message_id
from maild.respond.wording import format_when
from maild.routing.model import Rules
from maild.tickets.numbering import TicketNumbering
from maild.tickets.subject import strip_prefixes

_WIRE = compat32.clone(linesep="\r\n")

_ITEM_WORDS_SV = {
    "description": "beskrivning", "screenshot": "skärmbild", "occurred_at": "tidpunkt",
    "browser": "webbläsare och version", "os": "operativsystem och version",
    "campaign_number": "kampanjnummer", "company": "företag",
    "contact_name_title": "namn och befattning", "contact_details": "kontaktuppgifter",
}


def summary(ticket: Ticket, rules: Rules, *, priority_reason: str, role: str,
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


def compose_team_delivery(*, ticket: Ticket, rules: Rules, raw: bytes, original_subject: str,
                          sender: str | None, priority_reason: str, role: str,
                          support_address: str, numbering: TicketNumbering, domain: str,
                          now: datetime) -> list[ComposedMail]:
    """One message per team address of the ticket's queue (none when the queue has no team)."""
    queue = rules.queues.get(ticket.queue or "")
    if queue is None or not queue.team:
        return []
    clean = strip_prefixes(original_subject, numbering)
    subject = f"[{ticket.number}][{ticket.priority}] {clean}".strip()
    delivered = []
    for address in queue.team:
        message = MIMEMultipart("mixed")
        message_id = new_message_id(domain)
        message["From"] = formataddr(("maild", support_address))
        message["To"] = address
        reply_to = [sender, support_address] if sender else [support_address]
        message["Reply-To"] = ", ".join(reply_to)
        message["Subject"] = subject if subject.isascii() else _encoded(subject)
        message["Date"] = format_datetime(now)
        message["Message-ID"] = f"<{message_id}>"
        message["Auto-Submitted"] = "auto-generated"
        message[LOOP_HEADER] = domain
        message["X-Maild-Ticket"] = ticket.number
        message["X-Maild-Queue"] = ticket.queue or ""
        message["X-Maild-Priority"] = ticket.priority or ""
        message["X-Maild-Customer"] = ticket.customer or "-"
        message.attach(MIMEText(summary(ticket, rules, priority_reason=priority_reason,
                                        role=role, sender=sender), "plain", "utf-8"))
        original: Message = MIMEBase("message", "rfc822")
        original.set_payload(raw.decode("utf-8", "surrogateescape"))
        original["Content-Disposition"] = 'inline; filename="original.eml"'
        message.attach(original)
        delivered.append(ComposedMail(raw=_bytes(message), message_id=message_id,
                                      recipient=address))
    return delivered


def _encoded(text: str) -> str:
    from email.header import Header

    return Header(text, "utf-8", header_name="Subject").encode()


def _bytes(message: Message) -> bytes:
    text = message.as_string(policy=_WIRE)
    return text.encode("utf-8", "surrogateescape")
