"""The pure decision: raw message facts + rules + ticket lookups in, a decision record out.

Nothing here writes anything. `maild route` prints what `decide` returns, and
processing applies exactly that, so "why did this mail get this queue, this
priority, no acknowledgement?" always has its answer in the record.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Protocol

from maild.checks import check_items
from maild.envelope import Envelope, Identity
from maild.parse import ParsedMail
from maild.reading import Reading, support_address_of
from maild.respond.bounces import OutboxLookup, find_bounced, permanence
from maild.respond.policy import (
    AckHistory,
    AckLimits,
    AckRequest,
    ack_domains,
    ack_verdict,
    owed_confirmation,
    sender_standing,
)
from maild.routing.model import Rules
from maild.tickets.correlate import TicketLookup, correlate
from maild.tickets.numbering import TicketNumbering


class Lookups(TicketLookup, AckHistory, OutboxLookup, Protocol):
    """Everything the decision reads from what maild already stored."""

DECISION_KEYS = (
    "kind", "sender", "sender_domain", "private", "customer", "policy", "queue", "priority",
    "missing", "ack", "ack_reason", "ticket", "response_due",
)


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


def unparseable_decision(reason: str, envelope: Envelope, rules: Rules) -> Decision:
    """The record for a message that no parser could read: kept, quarantined, not answered."""
    support = support_address_of(envelope, None, rules)
    return Decision(kind="unparseable", sender=envelope.sender or None, queue=support.queue,
                    ack=False, ack_reason=f"unparseable message: {reason}",
                    details={"rules_version": rules.version, "support_address": support.address,
                             "quarantine_reason": reason})


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
    return decide_reading(Reading(mail, envelope, rules, identity), lookup=lookup,
                          numbering=numbering, limits=limits, reopen_within=reopen_within)


def decide_reading(
    reading: Reading,
    *,
    lookup: Lookups,
    numbering: TicketNumbering,
    limits: AckLimits = AckLimits(),  # noqa: B008 - an immutable value
    reopen_within: timedelta = timedelta(days=14),
) -> Decision:
    """`decide` for a message already read (`maild.reading`), joined to what is stored."""
    mail, envelope, rules = reading.mail, reading.envelope, reading.rules
    support = reading.support
    sender = reading.sender
    sender_address = reading.sender_address
    domain = reading.sender_domain
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

    verdict = reading.machine
    if verdict is not None:
        decision.kind = verdict.kind
        decision.queue = support.queue
        decision.ack_reason = f"machine mail ({verdict.kind}): {verdict.signal}"
        details["signal"] = verdict.signal
        details["language"] = None
        if verdict.kind == "bounce":
            _match_bounce(decision, mail, envelope, reading.identity, lookup)
        return decision
    details["signal"] = "no machine-mail signal: a person wrote it"
    trust = reading.trust
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
        details["ack_to"] = reading.answer_to[0]
        standing = sender_standing(sender_address, None, ticket.private, rules,
                                   trusted=trust.trusted)
        details["verified_sender"] = standing.verified is not None
        details["verified_by"] = standing.verified
        policy = rules.policies.get(ticket.policy or "")
        askable = [*policy.required, *(c.item for c in policy.required_when)] if policy else []
        if askable and not details["staff"]:
            results = check_items(mail, askable, no_machine_signal=True)  # `verdict` is None
            details["supplied"] = [result.item for result in results if result.present]
        return decision
    if correlation.refused is not None:
        details["refers_to"] = correlation.refused.number

    opening = reading.opening
    routed, chosen, entitled = opening.routed, opening.chosen, opening.entitled
    customer = routed.customer
    decision.customer = customer.id if customer else None
    decision.policy = routed.policy
    decision.queue = opening.queue
    decision.priority = opening.priority
    decision.private = routed.private
    details["customer_name"] = customer.name if customer else None
    details["customer_status"] = customer.status if customer else None
    details["route_reason"] = routed.reason
    details["priority_reason"] = chosen.reason if entitled.prioritised else (
        f"{entitled.reason}; lowest priority")
    details["priority_requested"] = chosen.level
    details["entitlement"] = entitled.to_json()
    details["rules_tried"] = list(routed.trace)
    details["language"] = opening.language
    decision.missing = [result.item for result in opening.results if not result.present]
    details["evidence"] = {result.item: result.evidence for result in opening.results
                           if result.present}
    if opening.required.because:
        details["required_when"] = opening.required.because
    due = opening.due
    decision.response_due = due.response.isoformat() if due.response else None
    details["resolution_due"] = due.resolution.isoformat() if due.resolution else None
    details["action_due"] = due.action.isoformat() if due.action else None

    recipient, recipient_rule = reading.answer_to
    standing = opening.standing
    details["ack_to"] = recipient
    details["text_digest"] = opening.digest
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
        recipient=recipient, sender=sender_address, digest=opening.digest,
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
