"""Whether a person gets an acknowledgement: who it may go to, and how often.

The recipient rule: a single Reply-To address if the message has one, else the
From address; never one of maild's own addresses, never a list or unattended
address (no-reply, -request, -bounces, owner-, nobody, ...), never an address
that bounced permanently within the suppression period, and none for a text
the same sender (or the same mailbox) already had acknowledged within the
duplicate window.

Then the limits, counted per mailbox (`Anna+x@Kund.se` is `anna@kund.se`) and
per domain (the sender's and the recipient's, free-mail providers excepted):
at most `max_per_hour`/`max_per_day` acknowledgements to one mailbox and
`domain_max_per_hour`/`domain_max_per_day` for one domain. A sender who is
owed a confirmation of every case (a registered contact, or a sender routed to
a customer with an agreement, answered at an address of that customer) is
never held back by these limits: the agreements promise a case number for
every mail, and loops are kept out by machine-mail detection and the
same-text rule. The ticket is made in every case; only the acknowledgement is
withheld.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Protocol

from maild.addresses import mailbox_key
from maild.classify.sender import address_domain, registrable_domain
from maild.routing.model import Customer, Rules

_UNATTENDED = re.compile(
    r"^(no[-_.]?reply|do[-_.]?not[-_.]?reply|noreply|donotreply|mailer[-_.]?daemon|"
    r"postmaster|bounces?|owner-.+|.+-(request|bounces?|owner|admin)|list-.+|.+-l|"
    r"listserv|majordomo|mailman|nobody)(\+.*)?$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class AckLimits:
    """How often acknowledgements may go to one mailbox and to one domain."""

    max_per_hour: int = 5
    max_per_day: int = 20
    domain_max_per_hour: int = 30
    domain_max_per_day: int = 100
    duplicate_window: timedelta = timedelta(hours=24)
    suppression: timedelta = timedelta(days=60)


class AckHistory(Protocol):
    """What was sent and what bounced, as the acknowledgement policy needs it."""

    def acks_to_mailbox(self, mailbox: str, recent: datetime, since: datetime
                        ) -> tuple[int, int]:
        """How many acknowledgements went to mailbox key `mailbox` since `recent`, and since
        `since` (the earlier)."""

    def acks_for_domain(self, domain: str, recent: datetime, since: datetime
                        ) -> tuple[int, int]:
        """How many acknowledgements went to or answered a sender at `domain` since `recent`,
        and since `since` (the earlier)."""

    def same_text_acknowledged(self, sender: str, mailbox: str, digest: str,
                               since: datetime) -> str | None:
        """The ticket opened with this text digest, by `sender` or acknowledged to `mailbox`."""

    def suppressed(self, address: str, since: datetime) -> str | None:
        """Why `address` must not get mail: it bounced permanently since `since`."""

    def hold_accounting(self) -> None:
        """Keep every other process from counting acknowledgements until this decision's
        transaction ends, so that what is counted next is exact (see maild.respond.accounting)."""


@dataclass(frozen=True)
class SenderStanding:
    """What maild knows of the sender: verified (who it claims to be) and entitled.

    `verified` says why the sender is believed to be who the From says (today:
    a registered contact of a customer); only a verified sender sees its own
    subject repeated in the acknowledgement. `entitled` says why every case of
    the sender must be confirmed (a registered contact, or a sender routed to a
    customer with an agreement). None means not.
    """

    verified: str | None = None
    entitled: str | None = None


@dataclass(frozen=True)
class AckRequest:
    """One acknowledgement to decide on."""

    recipient: str
    sender: str | None
    digest: str
    domains: tuple[str, ...] = ()      # the domains whose limit counts this acknowledgement
    owed: str | None = None            # why the recipient is owed it whatever the rate


def text_digest(text: str) -> str:
    """A digest of the text that ignores case, spacing and line breaks."""
    normalized = " ".join(text.lower().split())[:65536]
    return hashlib.sha256(normalized.encode("utf-8")).hexdigest()


def is_unattended(address: str) -> bool:
    """Whether `address` looks like a list or a mailbox nobody reads (no-reply, -request ...)."""
    return bool(_UNATTENDED.match(address.rpartition("@")[0]))


def sender_standing(sender: str | None, customer: Customer | None, private: bool,
                    rules: Rules, *, trusted: bool, committed: bool = True) -> SenderStanding:
    """Whether `sender` (routed to `customer`) is verified and entitled to every confirmation.

    Both need the sender to be authenticated (`trusted`): a forged From is neither, so it
    never has its subject repeated nor escapes the rate limits. Entitled also needs the
    contract's commitment (`committed`) to the case.
    """
    if not trusted or not sender:
        return SenderStanding()
    contact = rules.contact(sender)
    if contact is not None:
        reason = f"{sender} is an authenticated, registered contact of {contact[0].id}"
        return SenderStanding(verified=reason, entitled=reason if committed else None)
    verified = f"{sender} is authenticated"
    if customer is not None and not private and customer.status != "no-agreement" and committed:
        return SenderStanding(verified=verified,
                              entitled=f"{sender} is authenticated and routed to {customer.id}, "
                                       "which has an agreement")
    return SenderStanding(verified=verified)


def ack_domains(sender: str | None, recipient: str, rules: Rules) -> tuple[str, ...]:
    """The registrable domains whose limit an acknowledgement counts against.

    The sender's domain and the recipient's; a free-mail provider is shared by
    strangers, so it has no domain limit (its mailboxes keep theirs).
    """
    domains: list[str] = []
    for address in (sender, recipient):
        domain = registrable_domain(address_domain(address)) if address else ""
        if domain and domain not in rules.private and domain not in domains:
            domains.append(domain)
    return tuple(domains)


def owed_confirmation(standing: SenderStanding, sender: str | None, recipient: str,
                      customer: Customer | None, rules: Rules) -> str | None:
    """Why `recipient` gets the confirmation whatever the rate, or None.

    Only an entitled sender's own side is owed it: the sender's mailbox, a
    registered contact of the same customer, or an address at its domains. A
    Reply-To elsewhere is limited like any other recipient.
    """
    if standing.entitled is None or customer is None:
        return None
    same_customer = rules.contact(recipient)
    at_customer = rules.customer_for_domain(address_domain(recipient))
    if ((sender and mailbox_key(sender) == mailbox_key(recipient))
            or (same_customer is not None and same_customer[0].id == customer.id)
            or (at_customer is not None and at_customer.id == customer.id)):
        return standing.entitled
    return None


@dataclass(frozen=True)
class AckKeys:
    """What an acknowledgement is counted by: the recipient's mailbox and both domains."""

    mailbox: str
    recipient_domain: str | None
    sender_domain: str | None


def ack_keys(recipient: str, sender: str | None) -> AckKeys:
    """The keys the limits count an acknowledgement to `recipient` for `sender` by."""
    def domain_of(address: str | None) -> str | None:
        return (registrable_domain(address_domain(address)) or None) if address else None

    return AckKeys(mailbox=mailbox_key(recipient), recipient_domain=domain_of(recipient),
                   sender_domain=domain_of(sender))


def ack_verdict(request: AckRequest, *, now: datetime, history: AckHistory,
                limits: AckLimits) -> tuple[bool, str]:
    """(send?, why) for an acknowledgement of a new ticket."""
    recipient = request.recipient
    mailbox = mailbox_key(recipient)
    if is_unattended(recipient):
        return False, f"{recipient} looks like a list or unattended address: no acknowledgement"
    since = now - limits.suppression
    reason = history.suppressed(recipient, since) or (
        history.suppressed(mailbox, since) if mailbox != recipient.lower() else None)
    if reason:
        return False, f"{recipient} bounced permanently ({reason}): no acknowledgement"
    # From here the decision counts earlier acknowledgements: one process at a time, until
    # the acknowledgement this one may queue is committed.
    history.hold_accounting()
    if request.sender:
        earlier = history.same_text_acknowledged(request.sender, mailbox, request.digest,
                                                 now - limits.duplicate_window)
        if earlier:
            return False, (f"the same text from {request.sender} was acknowledged as {earlier} "
                           f"within {limits.duplicate_window.total_seconds() / 3600:g} h")
    if request.owed is not None:
        return True, f"new ticket from a person; every case is confirmed: {request.owed}"
    limited = _over_limit(mailbox, request.domains, now=now, history=history, limits=limits)
    if limited:
        return False, limited
    return True, "new ticket from a person"


def _over_limit(mailbox: str, domains: tuple[str, ...], *, now: datetime,
                history: AckHistory, limits: AckLimits) -> str | None:
    """The rate limit an acknowledgement to `mailbox` would break, or None."""
    counts: list[tuple[str, Callable[[datetime, datetime], tuple[int, int]], int, int]] = [
        (f"to the mailbox {mailbox}", partial(history.acks_to_mailbox, mailbox),
         limits.max_per_hour, limits.max_per_day),
        *((f"for the domain {domain}", partial(history.acks_for_domain, domain),
           limits.domain_max_per_hour, limits.domain_max_per_day) for domain in domains)]
    for what, sent_since, per_hour, per_day in counts:
        in_hour, in_day = sent_since(now - timedelta(hours=1), now - timedelta(days=1))
        for sent, name, most in ((in_hour, "hour", per_hour), (in_day, "day", per_day)):
            if sent >= most:
                return (f"rate limit: {sent} acknowledgements {what} in the last {name} "
                        f"(at most {most})")
    return None
