"""A staff reply to the customer: a person's answer, threaded on the ticket's conversation.

Unlike the acknowledgement this is not an automatic reply: it carries no
`Auto-Submitted`, so the customer's mail system treats it as a person's mail.
It is tagged `[TICKET]`, answers the customer's latest message (`In-Reply-To`)
and carries the thread's `References`, so the customer's answer finds its ticket.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from email.mime.text import MIMEText
from email.policy import compat32
from email.utils import format_datetime, formataddr
from typing import cast

from maild.classify.machine import LOOP_HEADER
from maild.respond.ack import _UTF8_QP, ComposedMail, _encoded, new_message_id
from maild.tickets.numbering import TicketNumbering
from maild.tickets.subject import tagged_subject

_WIRE = compat32.clone(linesep="\r\n")


def compose_reply(*, ticket: str, subject: str, text: str, recipient: str, sender: str,
                  sender_name: str, thread: Sequence[str], language: str,
                  numbering: TicketNumbering, domain: str, now: datetime) -> ComposedMail:
    """The reply `text` to `recipient`, answering the last of `thread` (oldest first)."""
    message_id = new_message_id(domain)
    body = text.replace("\r\n", "\n").rstrip() + "\n"
    message = MIMEText(body, "plain", cast("str", _UTF8_QP))
    headers: list[tuple[str, object]] = [
        ("From", formataddr((sender_name, sender), charset="utf-8")),
        ("To", recipient),
        ("Reply-To", sender),
        ("Subject", _encoded("Subject", tagged_subject(ticket, subject, numbering))),
        ("Date", format_datetime(now)),
        ("Message-ID", f"<{message_id}>"),
    ]
    if thread:
        headers += [("In-Reply-To", f"<{thread[-1]}>"),
                    ("References", " ".join(f"<{ref}>" for ref in list(thread)[-10:]))]
    headers += [(LOOP_HEADER, domain), ("X-Maild-Ticket", ticket),
                ("Content-Language", language)]
    body_headers = list(message.items())
    for name in list(message.keys()):
        del message[name]
    for name, value in [*headers, *body_headers]:
        message[name] = cast("str", value)
    return ComposedMail(raw=message.as_bytes(policy=_WIRE), message_id=message_id,
                        recipient=recipient)

