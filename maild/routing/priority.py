"""The priority a new ticket gets, by the signals its policy defines.

In order: a private sender or a sender who is not a registered contact (when
the customer lists contacts) gets the policy's lowest priority whatever they
write ("not prioritised"); then what the customer indicated (`markers`, such as
`[High]`, `Prioritet: Hög`, `Prio 1`); then impact keywords (`keywords`, such
as `driftstopp`, `ligger nere`, `outage`); then X-Priority / Importance
headers, only when the policy trusts them; else the policy's default. Markers
and keywords are matched as whole words in the subject and the new text of
the message (not in quoted earlier messages), most urgent level first.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from maild.parse import ParsedMail
from maild.routing.model import Customer, Policy

_SCAN_LIMIT = 16 * 1024


@dataclass(frozen=True)
class PriorityChoice:
    """The level chosen and the signal that chose it."""

    level: str
    reason: str


@lru_cache(maxsize=2048)
def _phrase(text: str) -> re.Pattern[str]:
    words = r"\s+".join(re.escape(part) for part in text.split())
    return re.compile(rf"(?<![\w]){words}(?![\w])", re.IGNORECASE)


def _found(phrases: tuple[str, ...], text: str) -> str | None:
    for phrase in phrases:
        match = _phrase(phrase).search(text)
        if match:
            return match.group(0)
    return None


def _new_text(mail: ParsedMail) -> str:
    lines = []
    for line in mail.text[:_SCAN_LIMIT].splitlines():
        stripped = line.strip()
        if stripped.startswith(">"):
            continue
        if re.match(r"^(-{2,}\s*(original message|ursprungligt meddelande)|"
                    r"(from|från):\s.+|on .+ wrote:|den .+ skrev .+:)", stripped, re.IGNORECASE):
            break  # the quoted earlier message starts here
        lines.append(line)
    return "\n".join(lines)


def _header_says_high(mail: ParsedMail) -> str | None:
    x_priority = (mail.header("X-Priority") or "").strip()
    if x_priority[:1] in ("1", "2"):
        return f"X-Priority: {x_priority}"
    for name in ("Importance", "Priority", "X-MSMail-Priority"):
        value = (mail.header(name) or "").strip().lower()
        if value in ("high", "urgent"):
            return f"{name}: {value}"
    return None


def choose_priority(mail: ParsedMail, policy: Policy, *, customer: Customer | None,
                    sender: str | None, private: bool) -> PriorityChoice:
    """The priority of a new ticket under `policy`, with the signal that decided it."""
    lowest = policy.lowest_priority
    if private and customer is None:
        return PriorityChoice(lowest, "private sender: lowest priority (not prioritised)")
    if customer is None:
        return PriorityChoice(lowest, "no agreement: lowest priority")
    if customer.contacts and sender not in {contact.address for contact in customer.contacts}:
        return PriorityChoice(lowest, f"{sender} is not a registered contact of {customer.id}: "
                              "lowest priority")
    text = f"{mail.subject}\n{_new_text(mail)}"
    for signal, describe in (("markers", "the customer indicated {level}: '{hit}'"),
                             ("keywords", "keyword '{hit}' means {level}")):
        for level in policy.priorities:
            target = policy.targets.get(level)
            hit = _found(getattr(target, signal), text) if target is not None else None
            if hit:
                return PriorityChoice(level, describe.format(level=level, hit=hit))
    if policy.trust_priority_headers:
        header = _header_says_high(mail)
        if header:
            return PriorityChoice(policy.trust_priority_headers,
                                  f"{header} (trusted by policy {policy.id})")
    return PriorityChoice(policy.default_priority, f"default priority of policy {policy.id}")
