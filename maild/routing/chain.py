"""The routing chain: which customer, policy and queue a new message gets.

Each rule is a small named check, tried in order; every hit and miss is
written to the trace, so `maild rules explain` and the decision record can
say exactly why a message went where it went.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from maild.classify.sender import address_domain, registrable_domain
from maild.routing.model import Customer, Rules, SupportAddress


@dataclass(frozen=True)
class Route:
    """Where a message goes, and the trace of the rules tried to get there."""

    customer: Customer | None
    policy: str
    queue: str
    private: bool
    sender_domain: str
    reason: str
    trace: tuple[dict[str, Any], ...] = field(default=())


def _queue_for(customer: Customer, support: SupportAddress) -> tuple[str, str]:
    if support.address in customer.queue_by_address:
        return customer.queue_by_address[support.address], (
            f"customer queue for {support.address}")
    if customer.queue is not None:
        return customer.queue, "customer queue"
    return support.queue, f"default queue of {support.address}"


def route(sender: str | None, support: SupportAddress, rules: Rules) -> Route:
    """Route a new message from `sender` (the real address, lower-case) to `support`."""
    trace: list[dict[str, Any]] = []
    domain = registrable_domain(address_domain(sender)) if sender else ""
    private = bool(domain) and domain in rules.private

    def tried(rule: str, matched: bool, detail: str) -> None:
        trace.append({"rule": rule, "matched": matched, "detail": detail})

    customer: Customer | None = None
    reason = ""
    contact = rules.contact(sender) if sender else None
    if contact is not None:
        customer, person = contact
        reason = f"{sender} is registered contact {person.name} of {customer.id}"
        tried("registered-contact", True, reason)
    else:
        tried("registered-contact", False, f"{sender or 'no sender'} is no registered contact")
        if private:
            tried("private-sender", True, f"{domain} is a private mail provider")
        else:
            tried("private-sender", False, f"{domain or 'no domain'} is not a private provider")
            customer = rules.customer_for_domain(address_domain(sender)) if sender else None
            if customer is not None:
                reason = f"sender domain {domain} belongs to {customer.id}"
                tried("customer-domain", True, reason)
            else:
                tried("customer-domain", False, f"no customer owns {domain or 'the domain'}")

    if customer is not None:
        queue, queue_reason = _queue_for(customer, support)
        policy = rules.policies[customer.policy]
        tried("queue", True, f"{queue} ({queue_reason})")
        return Route(customer=customer, policy=policy.id, queue=queue, private=private,
                     sender_domain=domain, reason=reason, trace=tuple(trace))

    fallback = rules.no_agreement
    if private:
        reason = (f"private address at {domain} that is no registered contact: no-agreement "
                  "route at the lowest priority")
    else:
        reason = f"unknown sender domain {domain or '(none)'}: no-agreement route"
    tried("no-agreement", True, reason)
    return Route(customer=None, policy=fallback.policy, queue=fallback.queue, private=private,
                 sender_domain=domain, reason=reason, trace=tuple(trace))
