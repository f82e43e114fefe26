"""Whether a message's From address is proven, by the trusted MTA's authentication results.

A sender is trusted when:
- `dmarc=pass` for exactly the From domain (DMARC includes alignment), or
- one of the paths the rules name for this sender holds (for customers and
  staff without DMARC, `authenticated_by` in the customer file or `[staff]`):
  - `"dkim"`: a DKIM pass whose `header.d` shares the From's organisational domain;
  - `"dkim:DOMAIN"`: a DKIM pass signed by exactly DOMAIN (or a subdomain), such as
    the mail service a customer sends through; name only a domain that signs
    nobody else's mail;
  - `"spf"`: an SPF pass whose `smtp.mailfrom` shares the From's organisational domain;
  - `"auth"`: the message was submitted with SMTP AUTH to the organisation's own MTA.

Without a trusted authserv-id configured nobody is trusted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from maild.classify.sender import address_domain, normalize_domain, registrable_domain
from maild.parse import ParsedMail
from maild.routing.model import Rules
from maild.trust.evidence import AuthEvidence, believed_results

PATHS = ("dkim", "spf", "auth")


def valid_path(path: str) -> bool:
    """Whether `path` is one of `dkim`, `spf`, `auth` or `dkim:DOMAIN`."""
    kind, colon, domain = path.partition(":")
    if colon:
        return kind == "dkim" and "." in domain and not domain.startswith(".")
    return path in PATHS


@dataclass(frozen=True)
class Trust:
    """The verdict on the sender, the path that proved it, and the evidence."""

    trusted: bool
    via: str | None
    reason: str
    evidence: AuthEvidence

    def to_json(self) -> dict[str, Any]:
        """The verdict as the decision record's `trust` entry."""
        return {
            "trusted": self.trusted, "via": self.via, "reason": self.reason,
            "authserv_id": list(self.evidence.authserv_ids),
            "spf": self.evidence.summary("spf"), "dkim": self.evidence.summary("dkim"),
            "dmarc": self.evidence.summary("dmarc"),
            "results": [result.to_json() for result in self.evidence.results],
            "ignored": list(self.evidence.ignored),
        }


def _domain_of(value: str | None) -> str:
    """The normalised domain of an address, `@domain` or bare domain (A- or U-labels)."""
    if not value:
        return ""
    return address_domain(value) if "@" in value else normalize_domain(value)


def _paths_for(sender: str, rules: Rules) -> tuple[tuple[str, ...], str]:
    if sender in rules.staff:
        return rules.staff.authenticated_by, "[staff]"
    found = rules.contact(sender)
    customer = found[0] if found else rules.customer_for_domain(address_domain(sender))
    if customer is None:
        return (), ""
    return customer.authenticated_by, f"customer {customer.id}"


def _path_holds(path: str, domain: str, evidence: AuthEvidence) -> str | None:
    organisation = registrable_domain(domain)
    kind, _, named = path.partition(":")
    named = normalize_domain(named) if named else ""
    if kind == "dkim":
        for result in evidence.passed("dkim"):
            signer = _domain_of(result.property("header.d", "header.i"))
            if named and (signer == named or signer.endswith("." + named)):
                return f"DKIM pass signed by {signer}"
            if not named and signer and registrable_domain(signer) == organisation:
                return f"DKIM pass aligned with {domain} (d={signer})"
    elif kind == "spf":
        for result in evidence.passed("spf"):
            envelope = _domain_of(result.property("smtp.mailfrom"))
            if envelope and registrable_domain(envelope) == organisation:
                return f"SPF pass aligned with {domain} (mailfrom {envelope})"
    elif kind == "auth":
        for result in evidence.passed("auth"):
            return "submitted with SMTP AUTH" + (
                f" as {result.property('smtp.auth')}" if result.property("smtp.auth") else "")
    return None


def assess(mail: ParsedMail, sender: str | None, rules: Rules) -> Trust:
    """The trust verdict on `sender` (the From address, lower-case) of `mail`."""
    evidence = believed_results(mail.headers, rules.trust)
    if not rules.trust.authserv_ids:
        return Trust(False, None, "no trusted authserv-id is configured ([trust] in "
                     "routing.toml): no sender can be authenticated", evidence)
    if not sender:
        return Trust(False, None, "the message has no sender address", evidence)
    domain = _domain_of(sender)
    for result in evidence.passed("dmarc"):
        if _domain_of(result.property("header.from")) == domain:
            return Trust(True, "dmarc", f"DMARC pass for {domain}", evidence)
    paths, owner = _paths_for(sender, rules)
    for path in paths:
        proof = _path_holds(path, domain, evidence)
        if proof:
            return Trust(True, path, f"{proof}: a path {owner} names", evidence)
    if not evidence.authserv_ids:
        why = "no Authentication-Results from the trusted MTA"
    else:
        why = (f"no DMARC pass for {domain} (spf={evidence.summary('spf') or 'none'}, "
               f"dkim={evidence.summary('dkim') or 'none'}, "
               f"dmarc={evidence.summary('dmarc') or 'none'})")
        if paths:
            why += f" and none of the paths {owner} names ({', '.join(paths)}) holds"
    return Trust(False, None, f"{sender} is not authenticated: {why}", evidence)
