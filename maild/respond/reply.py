"""A staff reply to the customer: a person's answer, threaded on the ticket's conversation.

Unlike the acknowledgement this is not an automatic reply: it carries no
`Auto-Submitted`, so the customer's mail system treats it as a person's mail.
It is tagged `[TICKET]`, answers the customer's latest message (`In-Reply-To`)
and carries the thread's `References`, so the customer's answer finds its ticket.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from maild.classify.machine import LOOP_HEADER
from maild.respond import wire
from maild.respond.ack import ComposedMail, new_message_id
from maild.tickets.numbering import TicketNumbering
from maild.tickets.subject import tagged_subject


def compose_reply(*, ticket: str, subject: str, text: str, recipient: str, sender: str,
                  sender_name: str, thread: Sequence[str], language: str,
                  numbering: TicketNumbering, domain: str, now: datetime) -> ComposedMail:
    """The reply `text` to `recipient`, answering the last of `thread` (oldest first)."""
    message_id = new_message_id(domain)
    body = text.replace("\r\n", "\n").rstrip() + "\n"
    references = list(thread)[-10:]
    fields = [
        wire.addresses("From", [(sender_name, sender)]),
        wire.addresses("To", [("", recipient)]),
        wire.addresses("Reply-To", [("", sender)]),
        wire.unstructured("Subject", tagged_subject(ticket, subject, numbering)),
        wire.date(now),
        wire.message_ids("Message-ID", [message_id]),
        wire.message_ids("In-Reply-To", [thread[-1]] if thread else []),
        wire.message_ids("References", references),
        wire.token(LOOP_HEADER, domain),
        wire.token("X-Maild-Ticket", ticket),
        wire.token("Content-Language", language),
    ]
    return ComposedMail(raw=wire.compose_text(fields, body), message_id=message_id,
                        recipient=recipient)
