"""The priority a new ticket gets, by the signals its policy defines.

In order: a private sender or a sender who is not a registered contact (when
the customer lists contacts) gets the policy's lowest priority whatever they
write ("not prioritised"); then the level the customer stated (`markers`,
such as `[High]`, `Prioritet: Hög`, `Prio 1`, `no rush`, and "Prioritet:
LEVEL" / "Priority: LEVEL" / "[LEVEL]" for each of the policy's own level
names); then impact keywords (`keywords`, such as `driftstopp`, `ligger nere`,
`outage`); then X-Priority / Importance headers, only when the policy trusts
them; else the policy's default. A stated level beats any keyword.

Markers and keywords are read in the subject and in what the sender wrote in
this message (`maild.checks.quoting.split_body`: never in quoted earlier mail;
keywords not in the signature either, where "För brådskande ärenden ring ..."
lives). They count as whole words only and not after a negation ("inte
brådskande", "not urgent"): see `maild.routing.statements`. When several
levels are stated, the most urgent one wins.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from maild.checks.quoting import split_body
from maild.parse import ParsedMail
from maild.routing.model import Customer, Policy
from maild.routing.statements import Hit, find_phrases

_SCAN_LIMIT = 16 * 1024
_STATEMENT_FORMS = ("Prioritet: {}", "Prioritet {}", "Priority: {}", "Priority {}", "Prio: {}",
                    "Prio {}", "[{}]")


@dataclass(frozen=True)
class PriorityChoice:
    """The level chosen and the signal that chose it."""

    level: str
    reason: str


def stated_levels(policy: Policy) -> dict[str, tuple[str, ...]]:
    """Each level's markers, with "Prioritet: LEVEL", "Priority: LEVEL", "[LEVEL]" added."""
    own = {level: target.markers for level, target in policy.targets.items()}
    return dict(_stated_levels(tuple((level, own.get(level, ())) for level in policy.priorities)))


@lru_cache(maxsize=64)
def _stated_levels(markers: tuple[tuple[str, tuple[str, ...]], ...]
                   ) -> dict[str, tuple[str, ...]]:
    """`stated_levels` of the levels and their own markers, made once for each policy's."""
    return {level: tuple(dict.fromkeys((*own, *(form.format(level)
                                                 for form in _STATEMENT_FORMS))))
            for level, own in markers}


def impact_keywords(policy: Policy) -> dict[str, tuple[str, ...]]:
    """Each level's impact keywords."""
    return {level: policy.targets[level].keywords for level in policy.priorities
            if level in policy.targets}


def _header_says_high(mail: ParsedMail) -> str | None:
    x_priority = (mail.header("X-Priority") or "").strip()
    if x_priority[:1] in ("1", "2"):
        return f"X-Priority: {x_priority}"
    for name in ("Importance", "Priority", "X-MSMail-Priority"):
        value = (mail.header(name) or "").strip().lower()
        if value in ("high", "urgent"):
            return f"{name}: {value}"
    return None


def _most_urgent(hits: list[Hit], policy: Policy) -> Hit | None:
    counted = [hit for hit in hits if not hit.negated]
    if not counted:
        return None
    return min(counted, key=lambda hit: (policy.priorities.index(hit.level), hit.start))


def level_from_words(subject: str, own_text: str, new_text: str,
                     policy: Policy) -> tuple[PriorityChoice | None, list[str]]:
    """The level the words state or describe, and the phrases not counted (negated).

    `own_text` is what the sender wrote (signature included) and is read for
    stated levels; `new_text` leaves the signature out and is read for keywords.
    """
    ignored: list[str] = []
    for signal, text, phrases in (
            ("marker", f"{subject}\n{own_text}", stated_levels(policy)),
            ("keyword", f"{subject}\n{new_text}", impact_keywords(policy))):
        hits = find_phrases(text, phrases)
        ignored += [f"'{hit.found}'" for hit in hits if hit.negated]
        chosen = _most_urgent(hits, policy)
        if chosen is None:
            continue
        if signal == "marker":
            reason = f"the customer indicated {chosen.level}: '{chosen.found}'"
        else:
            reason = f"keyword '{chosen.found}' means {chosen.level}"
        return PriorityChoice(chosen.level, reason), ignored
    return None, ignored


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
    body = split_body(mail.text[:_SCAN_LIMIT], mail.sender.name if mail.sender else "")
    chosen, ignored = level_from_words(mail.subject or "", body.own, body.new, policy)
    if chosen is not None:
        return chosen
    if policy.trust_priority_headers:
        header = _header_says_high(mail)
        if header:
            return PriorityChoice(policy.trust_priority_headers,
                                  f"{header} (trusted by policy {policy.id})")
    reason = f"default priority of policy {policy.id}"
    if ignored:
        reason += f" (not counted, negated: {', '.join(dict.fromkeys(ignored))})"
    return PriorityChoice(policy.default_priority, reason)
