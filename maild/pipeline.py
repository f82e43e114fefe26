"""The pure decision: raw message facts + rules + ticket lookups in, a decision record out.

Nothing here writes anything. `maild route` prints what `decide` returns, and
processing applies exactly that, so "why did this mail get this queue, this
priority, no acknowledgement?" always has its answer in the record.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Protocol

from maild.addresses import Address, normalize_address
from maild.checks import check_items
from maild.checks.conditions import RequiredItems, required_items
from maild.classify.language import guess_language
from maild.classify.machine import classify_machine
from maild.classify.sender import address_domain, registrable_domain
from maild.parse import ParsedMail
from maild.respond.bounces import OutboxLookup, find_bounced, permanence
from maild.respond.policy import (
    AckHistory,
    AckLimits,
    AckRequest,
    ack_domains,
    ack_verdict,
    owed_confirmation,
    sender_standing,
    text_digest,
)
from maild.routing.chain import route
from maild.routing.model import Rules, SupportAddress
from maild.routing.priority import choose_priority
from maild.sla.policy_clock import Deadlines, deadlines
from maild.tickets.correlate import TicketLookup, correlate
from maild.tickets.numbering import TicketNumbering
from maild.trust.entitlement import entitlement
from maild.trust.verdict import assess


class Lookups(TicketLookup, AckHistory, OutboxLookup, Protocol):
    """Everything the decision reads from what maild already stored."""

DECISION_KEYS = (
    "kind", "sender", "sender_domain", "private", "customer", "policy", "queue", "priority",
    "missing", "ack", "ack_reason", "ticket", "response_due",
)


@dataclass(frozen=True)
class Envelope:
    """How a message arrived: SMTP envelope (or what stands for it) and time."""

    sender: str | None            # "" is the null sender <>, None is unknown
    recipients: tuple[str, ...]
    received_at: datetime
    transport: str = "file"


@dataclass(frozen=True)
class Identity:
    """maild's own names, to recognise its own mail coming back."""

    domains: frozenset[str]
    addresses: frozenset[str]


@dataclass
class Decision:
    """The decision record: stable keys first, then the details that explain them."""

    kind: str
    sender: str | None = None
    sender_domain: str | None = None
    private: bool = False
    customer: str | None = None
    policy: str | None = None
    queue: str | None = None
    priority: str | None = None
    missing: list[str] | None = None
    ack: bool = False
    ack_reason: str = ""
    ticket: str | None = None
    response_due: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The record as JSON-ready data: the stable keys, then `details` keys."""
        record: dict[str, Any] = {key: getattr(self, key) for key in DECISION_KEYS}
        record.update(self.details)
        return record


def identity_of(rules: Rules, mail_domain: str | None) -> Identity:
    """maild's own domains and addresses: the served addresses and the configured mail domain."""
    domains = {address.address.rpartition("@")[2] for address in rules.addresses}
    if mail_domain:
        domains.add(mail_domain)
    return Identity(domains=frozenset(domains),
                    addresses=frozenset(address.address for address in rules.addresses))


def support_address_of(envelope: Envelope, mail: ParsedMail | None,
                       rules: Rules) -> SupportAddress:
    """The served address this message was sent to: envelope first, then To/Cc, else the default."""
    candidates = list(envelope.recipients)
    if mail is not None:
        candidates += [address.address for address in mail.to + mail.cc]
        candidates += list(mail.header_all("Delivered-To")) + list(mail.header_all("X-Original-To"))
    for candidate in candidates:
        served = rules.support_address(candidate)
        if served is not None:
            return served
    return rules.default_address


def ack_recipient(mail: ParsedMail, rules: Rules) -> tuple[str | None, str]:
    """Who an acknowledgement goes to: a single Reply-To, else From; never a served address."""
    reply_to = [address for address in mail.reply_to if rules.support_address(
        address.address) is None]
    if len(reply_to) == 1:
        return reply_to[0].address, "Reply-To"
    if mail.sender is not None and rules.support_address(mail.sender.address) is None:
        return mail.sender.address, "From"
    return None, "no address to answer"


def unparseable_decision(reason: str, envelope: Envelope, rules: Rules) -> Decision:
    """The record for a message that no parser could read: kept, quarantined, not answered."""
    support = support_address_of(envelope, None, rules)
    return Decision(kind="unparseable", sender=envelope.sender or None, queue=support.queue,
                    ack=False, ack_reason=f"unparseable message: {reason}",
                    details={"rules_version": rules.version, "support_address": support.address,
                             "quarantine_reason": reason})


def _sender_of(mail: ParsedMail, envelope: Envelope) -> Address | None:
    if mail.sender is not None:
        return mail.sender
    address = normalize_address(envelope.sender) if envelope.sender else None
    return Address(name="", address=address) if address else None


def decide(
    mail: ParsedMail,
    envelope: Envelope,
    rules: Rules,
    *,
    lookup: Lookups,
    numbering: TicketNumbering,
    identity: Identity,
    limits: AckLimits = AckLimits(),  # noqa: B008 - an immutable value
    reopen_within: timedelta = timedelta(days=14),
) -> Decision:
    """Classify, correlate and route `mail`; say whether it gets an acknowledgement."""
    support = support_address_of(envelope, mail, rules)
    sender = _sender_of(mail, envelope)
    sender_address = sender.address.lower() if sender else None
    domain = registrable_domain(address_domain(sender_address)) if sender_address else None
    details: dict[str, Any] = {
        "message_id": mail.message_id,
        "subject": mail.subject,
        "sender_name": sender.name if sender else None,
        "support_address": support.address,
        "received_at": envelope.received_at.isoformat(),
        "rules_version": rules.version,
        "parser": mail.parser,
        "defects": list(mail.defects),
        "resolution_due": None,
        "action_due": None,
    }
    decision = Decision(kind="new", sender=sender_address, sender_domain=domain or None,
                        private=bool(domain) and domain in rules.private, details=details)

    verdict = classify_machine(mail, envelope.sender, identity.domains, identity.addresses)
    if verdict is not None:
        decision.kind = verdict.kind
        decision.queue = support.queue
        decision.ack_reason = f"machine mail ({verdict.kind}): {verdict.signal}"
        details["signal"] = verdict.signal
        details["language"] = None
        if verdict.kind == "bounce":
            _match_bounce(decision, mail, envelope, identity, lookup)
        return decision
    details["signal"] = "no machine-mail signal: a person wrote it"
    trust = assess(mail, sender_address, rules)
    details["trust"] = trust.to_json()

    correlation = correlate(mail, sender_address, rules, lookup, numbering,
                            trusted=trust.trusted, now=envelope.received_at,
                            reopen_within=reopen_within)
    details["correlation"] = correlation.reason
    if correlation.ticket is not None:
        ticket = correlation.ticket
        decision.kind = "followup"
        decision.ticket = ticket.number
        decision.customer = ticket.customer
        decision.policy = ticket.policy
        decision.queue = ticket.queue
        decision.priority = ticket.priority
        decision.private = ticket.private
        decision.ack_reason = f"follow-up on {ticket.number}: no acknowledgement"
        details["language"] = ticket.language
        details["followup_via"] = correlation.via
        details["staff"] = trust.trusted and sender_address in rules.staff
        details["ack_to"] = ack_recipient(mail, rules)[0]
        standing = sender_standing(sender_address, None, ticket.private, rules,
                                   trusted=trust.trusted)
        details["verified_sender"] = standing.verified is not None
        details["verified_by"] = standing.verified
        policy = rules.policies.get(ticket.policy or "")
        askable = [*policy.required, *(c.item for c in policy.required_when)] if policy else []
        if askable and not details["staff"]:
            details["supplied"] = [result.item for result in check_items(mail, askable)
                                   if result.present]
        return decision
    if correlation.refused is not None:
        details["refers_to"] = correlation.refused.number

    routed = route(sender_address, support, rules)
    customer = routed.customer
    policy = rules.policies[routed.policy]
    # What the mail asks for; whether the sender may have it is the entitlement's question
    # (the customer's contact list counts there, under `entitled = "contacts"`).
    chosen = choose_priority(mail, policy, customer=replace(customer, contacts=()) if customer
                             else None, sender=sender_address, private=routed.private)
    entitled = entitlement(customer, policy, sender=sender_address, private=routed.private,
                           trust=trust)
    decision.customer = customer.id if customer else None
    decision.policy = routed.policy
    decision.queue = routed.queue
    if entitled.status == "suspended" and rules.suspended_queue:
        decision.queue = rules.suspended_queue
    decision.priority = chosen.level if entitled.prioritised else policy.lowest_priority
    decision.private = routed.private
    details["customer_name"] = customer.name if customer else None
    details["customer_status"] = customer.status if customer else None
    details["route_reason"] = routed.reason
    details["priority_reason"] = chosen.reason if entitled.prioritised else (
        f"{entitled.reason}; lowest priority")
    details["priority_requested"] = chosen.level
    details["entitlement"] = entitled.to_json()
    details["rules_tried"] = list(routed.trace)
    language = customer.language if customer else guess_language(
        f"{mail.subject}\n{mail.text}") or "sv"
    details["language"] = language
    # Support on hold is not given: a suspended customer is asked for nothing technical.
    required = required_items(policy, mail) if entitled.status != "suspended" else \
        RequiredItems((), {})
    results = check_items(mail, required.items)
    decision.missing = [result.item for result in results if not result.present]
    details["evidence"] = {result.item: result.evidence for result in results if result.present}
    if required.because:
        details["required_when"] = required.because
    due = deadlines(policy, decision.priority, envelope.received_at, decision.queue) \
        if entitled.committed else Deadlines()
    decision.response_due = due.response.isoformat() if due.response else None
    details["resolution_due"] = due.resolution.isoformat() if due.resolution else None
    details["action_due"] = due.action.isoformat() if due.action else None

    recipient, recipient_rule = ack_recipient(mail, rules)
    standing = sender_standing(sender_address, customer, routed.private, rules,
                               trusted=trust.trusted, committed=entitled.committed)
    details["ack_to"] = recipient
    details["text_digest"] = text_digest(mail.text)
    details["verified_sender"] = standing.verified is not None
    details["verified_by"] = standing.verified
    details["entitled_sender"] = standing.entitled is not None
    details["entitled_by"] = standing.entitled
    if recipient is None:
        decision.ack_reason = "no sender address that an acknowledgement could go to"
        return decision
    if correlation.refused is not None and not trust.trusted:
        decision.ack_reason = (f"names {correlation.refused.number}, which an unauthenticated "
                               "sender may not join: registered without an acknowledgement "
                               "(no loop with an automatic responder, nothing told to a "
                               "forger)")
        return decision
    request = AckRequest(
        recipient=recipient, sender=sender_address, digest=details["text_digest"],
        domains=ack_domains(sender_address, recipient, rules),
        owed=owed_confirmation(standing, sender_address, recipient, customer, rules))
    decision.ack, reason = ack_verdict(request, now=envelope.received_at, history=lookup,
                                       limits=limits)
    decision.ack_reason = f"{reason}; answered at {recipient_rule}" if decision.ack else reason
    return decision


def _match_bounce(decision: Decision, mail: ParsedMail, envelope: Envelope, identity: Identity,
                  lookup: Lookups) -> None:
    """Attach a bounce of maild's own mail to the ticket it concerns, if it is one."""
    found = find_bounced(mail, envelope.recipients, identity.domains, lookup)
    if found is None:
        decision.details["bounce_of"] = None
        return
    item, how = found
    permanent, evidence = permanence(mail)
    decision.ticket = item.ticket
    decision.details["bounce_of"] = {"outbox": item.id, "recipient": item.recipient,
                                     "matched_by": how, "permanent": permanent,
                                     "evidence": evidence}
