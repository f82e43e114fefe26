"""What the agreement promises this sender: a commitment, their own priority, or neither.

In order, for a new ticket routed to a customer:
- `suspended` (payment default): registered, on hold, no commitment;
- `no-agreement` status: registered, no commitment;
- an unauthenticated sender: registered at the lowest priority, no commitment
  until staff entitle the ticket;
- a policy with `entitled = "contacts"` and a sender who is no registered
  contact: the same;
- a registered contact writing from a private address under a policy with
  `private_addresses = "lowest"`: committed, but at the lowest priority;
- everyone else: committed, at the priority they indicated.
Mail that reaches no customer keeps the no-agreement route's own terms.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from maild.routing.model import Customer, Policy
from maild.trust.verdict import Trust


@dataclass(frozen=True)
class Entitlement:
    """Whether deadlines apply, whether the sender's priority words count, and why."""

    status: str
    committed: bool
    prioritised: bool
    reason: str
    flag: str | None = None      # a short line for the team, in Swedish

    @property
    def entitled(self) -> bool:
        """Whether the sender may claim the agreement's commitment without staff's word."""
        return self.status in ("entitled", "private-address")

    def to_json(self) -> dict[str, Any]:
        """The entitlement as the decision record's `entitlement` entry."""
        return {"status": self.status, "entitled": self.entitled, "committed": self.committed,
                "prioritised": self.prioritised, "reason": self.reason, "flag": self.flag}


def entitlement(customer: Customer | None, policy: Policy, *, sender: str | None,
                private: bool, trust: Trust) -> Entitlement:
    """The entitlement of `sender` under `customer`'s agreement (`policy`)."""
    if customer is None:
        flag = None if trust.trusted else "avsändaren är inte autentiserad."
        return Entitlement("no-customer", True, True, "no customer agreement: the "
                           "no-agreement route's terms", flag)
    if customer.status == "suspended":
        return Entitlement("suspended", False, False, f"{customer.id} is suspended (payment "
                           "default): registered and on hold, no deadline",
                           "kundens support är vilande (t.ex. obetalda fakturor): inget "
                           "åtagande, ingen svarstid.")
    if customer.status == "no-agreement":
        return Entitlement("no-agreement", False, False, f"{customer.id} has no agreement: "
                           "no commitment", f"{customer.name} har inget avtal: inget åtagande.")
    if not trust.trusted:
        return Entitlement("unauthenticated", False, False,
                           f"{trust.reason}: lowest priority, no commitment until staff "
                           "entitle the ticket",
                           "avsändaren är inte autentiserad (se trust i beslutet): lägsta "
                           "prioritet och inget åtagande förrän ni har kontrollerat "
                           "avsändaren: maild ticket entitle NUMMER --reason ...")
    if policy.entitled == "contacts" and not customer.is_contact(sender):
        return Entitlement("not-a-contact", False, False,
                           f"{sender} is not a named contact of {customer.id} and policy "
                           f"{policy.id} entitles named contacts only: no commitment until "
                           "staff entitle the ticket",
                           f"{sender} är inte en anmäld kontaktperson hos {customer.name}. "
                           "Inget åtagande förrän ärendet godkänns: "
                           "maild ticket entitle NUMMER --reason ...")
    if private and policy.private_addresses == "lowest":
        return Entitlement("private-address", True, False,
                           f"{sender} is a private address: policy {policy.id} does not "
                           "prioritise cases from private addresses (lowest priority)",
                           "privat adress: ärenden från privata adresser prioriteras inte.")
    return Entitlement("entitled", True, True, f"{trust.reason}; entitled under {policy.id}")
