"""How a message arrived, and the names by which maild knows its own mail."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from maild.routing.model import Rules


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


def identity_of(rules: Rules, mail_domain: str | None) -> Identity:
    """maild's own domains and addresses: the served addresses and the configured mail domain."""
    domains = {address.address.rpartition("@")[2] for address in rules.addresses}
    if mail_domain:
        domains.add(mail_domain)
    return Identity(domains=frozenset(domains),
                    addresses=frozenset(address.address for address in rules.addresses))
