"""Bounces of maild's own mail: which outbox item they concern, and whether for good.

Every message maild sends has a VERP envelope sender, `support+bounce-TOKEN@domain`,
so a bounce arriving at that address names its item exactly. A bounce sent to
some other address is matched by the Message-ID of the returned message. A
delivery report's Status 5.x.x (or Action: failed) is permanent; 4.x.x or
Action: delayed is temporary.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from maild.parse import ParsedMail

_TAG = re.compile(r"\+bounce-([0-9a-f]{16})@", re.IGNORECASE)
_OWN_ID = re.compile(r"<?(maild\.[0-9a-f]{24}@[A-Za-z0-9.-]+)>?")
_STATUS = re.compile(r"(?im)^\s*status:\s*([245])\.\d{1,3}\.\d{1,3}")
_ACTION = re.compile(r"(?im)^\s*action:\s*(failed|delayed|delivered|relayed|expanded)")


@dataclass(frozen=True)
class OutboxRef:
    """A message maild sent, as bounce matching needs it."""

    id: int
    ticket_id: int | None
    ticket: str | None
    recipient: str


class OutboxLookup(Protocol):
    """Finding what maild sent."""

    def outbox_by_token(self, token: str) -> OutboxRef | None:
        """The item whose VERP token is `token`."""

    def outbox_by_message_ids(self, message_ids: Sequence[str]) -> OutboxRef | None:
        """The item that had one of these Message-IDs."""


def new_token() -> str:
    """A fresh VERP token: 16 hex digits, unguessable."""
    return secrets.token_hex(8)


def verp_address(support_address: str, token: str) -> str:
    """The envelope sender for an item: `local+bounce-TOKEN@domain` of the support address."""
    local, _, domain = support_address.rpartition("@")
    return f"{local.split('+', 1)[0]}+bounce-{token}@{domain}"


def tokens_in(addresses: Iterable[str]) -> list[str]:
    """The VERP tokens named by `addresses`."""
    return [match.group(1).lower() for address in addresses
            if (match := _TAG.search(address + "@"))]


def own_message_ids(mail: ParsedMail, domains: frozenset[str]) -> list[str]:
    """Message-IDs of maild's own form under its domains, from the returned message."""
    found = [mid for mid in mail.embedded_message_ids if mid.startswith("maild.")]
    found += _OWN_ID.findall(mail.report_text) + _OWN_ID.findall(mail.text[:65536])
    return [mid for mid in dict.fromkeys(found) if mid.rpartition("@")[2].lower() in domains]


def permanence(mail: ParsedMail) -> tuple[bool, str]:
    """(permanent?, the evidence) for a bounce."""
    text = mail.report_text or mail.text[:16384]
    status = _STATUS.search(text)
    if status:
        return status.group(1) == "5", f"Status {status.group(0).split(':', 1)[1].strip()}"
    action = _ACTION.search(text)
    if action:
        return action.group(1).lower() == "failed", f"Action: {action.group(1).lower()}"
    if re.search(r"(?i)\b(delayed|will (continue to )?retry|temporar)", text):
        return False, "the report says delivery is delayed"
    return True, "no delivery status: taken as permanent"


def find_bounced(mail: ParsedMail, envelope_recipients: Sequence[str],
                 domains: frozenset[str], lookup: OutboxLookup) -> tuple[OutboxRef, str] | None:
    """The outbox item a bounce concerns, and how it was found."""
    addresses = [*envelope_recipients, *(a.address for a in mail.to),
                 *mail.header_all("Delivered-To"), *mail.header_all("X-Original-To")]
    for token in tokens_in(addresses):
        item = lookup.outbox_by_token(token)
        if item is not None:
            return item, f"VERP address +bounce-{token}"
    ids = own_message_ids(mail, domains)
    if ids:
        item = lookup.outbox_by_message_ids(ids)
        if item is not None:
            return item, f"returned message {ids[0]}"
    return None
