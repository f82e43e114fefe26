"""The acknowledgement: a new ticket's confirmation, composed per RFC 3834.

The body is rendered from the admin's template for the ticket's language and
never quotes the sender's text: a forged sender must not be able to make maild
carry words to a victim. The subject is `[TICKET] original subject`.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from email.charset import QP, Charset
from email.header import Header
from email.mime.text import MIMEText
from email.policy import compat32
from email.utils import format_datetime, formataddr
from functools import lru_cache
from typing import cast

from jinja2 import StrictUndefined, Template
from jinja2.sandbox import SandboxedEnvironment

from maild.checks import ITEM_WORDS
from maild.classify.machine import LOOP_HEADER
from maild.pipeline import Decision
from maild.respond.wording import format_hours, format_when
from maild.routing.model import Rules
from maild.tickets.numbering import TicketNumbering
from maild.tickets.subject import tagged_subject

_UTF8_QP = Charset("utf-8")
_UTF8_QP.body_encoding = QP
_WIRE = compat32.clone(linesep="\r\n")
_ENVIRONMENT = SandboxedEnvironment(undefined=StrictUndefined, keep_trailing_newline=True,
                                    autoescape=False)


class TemplateMissing(Exception):
    """The rules hold no acknowledgement template for a language."""


@dataclass(frozen=True)
class ComposedMail:
    """A message ready for the outbox: bytes, Message-ID and recipient."""

    raw: bytes
    message_id: str
    recipient: str


def new_message_id(domain: str) -> str:
    """A fresh, unguessable Message-ID under maild's domain (without angle brackets)."""
    return f"maild.{secrets.token_hex(12)}@{domain}"


def render_ack_body(rules: Rules, decision: Decision, ticket: str, received: datetime,
                    kind: str = "ack") -> str:
    """The text in the ticket's language from `rules/templates/KIND.LANG.txt` (ack, complete)."""
    language = decision.details.get("language") or "sv"
    template = rules.templates.get(f"{kind}.{language}") or rules.templates.get(f"{kind}.sv")
    if template is None:
        raise TemplateMissing(f"no template {kind}.{language}.txt in "
                              f"{rules.directory / 'templates'}")
    customer = rules.customers.get(decision.customer or "")
    queue = rules.queues.get(decision.queue or "")
    policy = rules.policies.get(decision.policy or "")
    due = decision.response_due
    context = {
        "ticket": ticket,
        "customer": customer.name if customer else None,
        "queue": queue.name if queue else (decision.queue or ""),
        "priority": decision.priority,
        "received": format_when(received, language),
        "response_due": format_when(datetime.fromisoformat(due), language) if due else None,
        "opening_hours": format_hours(policy.hours, language) if policy else "",
        "missing": [ITEM_WORDS[item][language] for item in decision.missing or []],
        "suspended": bool(customer and customer.status == "suspended"),
        "unverified": (decision.details.get("entitlement") or {}).get("status") in (
            "unauthenticated", "not-a-contact"),
        "support_address": decision.details.get("support_address"),
    }
    return _compiled(template).render(context)


@lru_cache(maxsize=64)
def _compiled(source: str) -> Template:
    """The template compiled once per text: compiling costs far more than rendering."""
    return _ENVIRONMENT.from_string(source)


def compose_ack(
    *,
    rules: Rules,
    decision: Decision,
    ticket: str,
    original_message_id: str | None,
    original_references: tuple[str, ...],
    numbering: TicketNumbering,
    domain: str,
    now: datetime,
    kind: str = "ack",
) -> ComposedMail:
    """The acknowledgement (or `kind` "complete") for `ticket`, to the decision's `ack_to`."""
    recipient = decision.details["ack_to"]
    support = decision.details["support_address"]
    queue = rules.queues.get(decision.queue or "")
    received = datetime.fromisoformat(decision.details["received_at"])
    message_id = new_message_id(domain)

    language = decision.details.get("language") or "sv"
    # compat32 building: the policy-based EmailMessage costs several milliseconds per
    # message in header parsing; these headers are made here and need none of it.
    # MIMEText takes a Charset object too (typeshed says str): it selects quoted-printable.
    message = MIMEText(render_ack_body(rules, decision, ticket, received, kind), "plain",
                       cast("str", _UTF8_QP))
    headers: list[tuple[str, str | Header]] = [
        ("From", formataddr((queue.name if queue else "Support", support), charset="utf-8")),
        ("To", recipient),
        ("Reply-To", support),
        ("Subject", _encoded("Subject", tagged_subject(
            ticket, decision.details.get("subject") or "", numbering))),
        ("Date", format_datetime(now)),
        ("Message-ID", f"<{message_id}>"),
    ]
    if original_message_id:
        references = [*original_references, original_message_id][-10:]
        headers += [("In-Reply-To", f"<{original_message_id}>"),
                    ("References", " ".join(f"<{ref}>" for ref in references))]
    headers += [
        ("Auto-Submitted", "auto-replied"),
        ("X-Auto-Response-Suppress", "All"),
        ("Precedence", "auto_reply"),
        (LOOP_HEADER, domain),
        ("X-Maild-Ticket", ticket),
        ("Content-Language", language),
    ]
    body_headers = list(message.items())
    for name in list(message.keys()):
        del message[name]
    for name, value in [*headers, *body_headers]:
        message[name] = cast("str", value)  # compat32 takes Header objects as values too
    return ComposedMail(raw=message.as_bytes(policy=_WIRE), message_id=message_id,
                        recipient=recipient)


def _encoded(name: str, text: str) -> str | Header:
    """`text` as a header value: ASCII as is, anything else as RFC 2047 encoded words."""
    if text.isascii():
        return text
    return Header(text, "utf-8", header_name=name)
