"""The acknowledgement: a new ticket's confirmation, composed per RFC 3834.

The body is rendered from the admin's template for the ticket's language and
never quotes the sender's text: a forged sender must not be able to make maild
carry words to a victim. The subject is `[TICKET] original subject` only for a
verified sender (the decision's `verified_sender`), else `[TICKET]` and
maild's own words.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

from jinja2 import StrictUndefined, Template
from jinja2.sandbox import SandboxedEnvironment

from maild.checks import ITEM_WORDS
from maild.classify.machine import LOOP_HEADER
from maild.pipeline import Decision
from maild.respond import wire
from maild.respond.wording import format_when_in_zone, hours_in_words
from maild.routing.model import Policy, Rules
from maild.tickets.numbering import TicketNumbering
from maild.tickets.subject import tagged_subject

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
    action_due = decision.details.get("action_due")
    zone = ZoneInfo(customer.timezone if customer and customer.timezone else
                    policy.timezone if policy else "Europe/Stockholm")
    suspended = bool(customer and customer.status == "suspended")
    context = {
        "ticket": ticket,
        "customer": customer.name if customer else None,
        "queue": queue.name_in(language) if queue else "Support",
        "priority": decision.priority,
        "received": format_when_in_zone(received, language, zone),
        "response_due": format_when_in_zone(datetime.fromisoformat(due), language, zone)
        if due else None,
        "action_due": format_when_in_zone(datetime.fromisoformat(action_due), language, zone)
        if action_due else None,
        "opening_hours": _opening_hours(policy, decision.priority, decision.queue, language),
        "missing": [ITEM_WORDS[item][language] for item in decision.missing or []],
        "suspended": suspended,
        "unverified": (decision.details.get("entitlement") or {}).get("status") in (
            "unauthenticated", "not-a-contact"),
        "support_address": decision.details.get("support_address"),
    }
    return _compiled(template).render(context)


def _opening_hours(policy: Policy | None, priority: str | None, queue: str | None,
                   language: str) -> str:
    """The hours that count for this case's deadline: the queue's service hours under the
    policy, else the priority's own, else the policy's."""
    if policy is None:
        return ""
    target = policy.targets.get(priority or policy.default_priority)
    service = policy.queue_services.get(queue or "")
    hours = target.hours if target is not None and target.hours else policy.hours
    holidays = policy.holidays if target is None or target.holidays is None else \
        target.holidays
    if service is not None and service.hours:
        hours, holidays = service.hours, service.holidays or holidays
    return hours_in_words(hours, holidays, language, ZoneInfo(policy.timezone))


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
    """The acknowledgement (or `kind` "complete") for `ticket`, to the decision's `ack_to`.

    Raises `UnusableAddress` when `ack_to` cannot be written as an address.
    """
    recipient = decision.details["ack_to"]
    support = decision.details["support_address"]
    queue = rules.queues.get(decision.queue or "")
    received = datetime.fromisoformat(decision.details["received_at"])
    message_id = new_message_id(domain)

    language = decision.details.get("language") or "sv"
    subject = tagged_subject(ticket, ack_subject(decision, kind), numbering)
    references = [*original_references, original_message_id][-10:] if original_message_id else []
    fields = [
        wire.addresses("From", [(queue.name_in(language) if queue else "Support", support)]),
        wire.addresses("To", [("", recipient)]),
        wire.addresses("Reply-To", [("", support)]),
        wire.unstructured("Subject", subject),
        wire.date(now),
        wire.message_ids("Message-ID", [message_id]),
        wire.message_ids("In-Reply-To", [original_message_id]),
        wire.message_ids("References", references),
        wire.token("Auto-Submitted", "auto-replied"),
        wire.token("X-Auto-Response-Suppress", "All"),
        wire.token("Precedence", "auto_reply"),
        wire.token(LOOP_HEADER, domain),
        wire.token("X-Maild-Ticket", ticket),
        wire.token("Content-Language", language),
    ]
    body = render_ack_body(rules, decision, ticket, received, kind)
    return ComposedMail(raw=wire.compose_text(fields, body), message_id=message_id,
                        recipient=recipient)


# To a sender who is not verified, maild's own words: the subject is the sender's text.
_NEUTRAL_SUBJECTS = {
    ("ack", "sv"): "Vi har tagit emot ditt ärende",
    ("ack", "en"): "We have received your case",
    ("complete", "sv"): "Vi har fått uppgifterna som saknades",
    ("complete", "en"): "We have received the missing information",
}


def ack_subject(decision: Decision, kind: str = "ack") -> str:
    """The sender's subject for a verified sender (`verified_sender`), else maild's own."""
    if decision.details.get("verified_sender"):
        return str(decision.details.get("subject") or "")
    language = decision.details.get("language") or "sv"
    return _NEUTRAL_SUBJECTS.get((kind, language)) or _NEUTRAL_SUBJECTS[("ack", "sv")]

