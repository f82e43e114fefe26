"""What a message says of itself under a set of rules: the decision's half without a database.

`maild.pipeline.decide` joins a reading to what is stored: the ticket a mail
follows up, the acknowledgements already sent. Processing works out a batch's
readings before it takes its write turn, so that the turn holds the database for
the lookups and the writes alone: on SQLite intake waits less, and on PostgreSQL
several processes read their batches while one writes.

Each part is worked out once, when it is first asked for. A part that raises is
not kept: it is worked out again (and raises again) when the decision asks for
it, so the failure is recorded where processing records failures.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property

from maild.addresses import Address, normalize_address
from maild.checks import check_items
from maild.checks.conditions import RequiredItems, required_items
from maild.checks.result import ItemResult
from maild.classify.language import guess_language
from maild.classify.machine import MachineVerdict, classify_machine
from maild.classify.sender import address_domain, registrable_domain
from maild.envelope import Envelope, Identity
from maild.parse import ParsedMail
from maild.respond.policy import SenderStanding, sender_standing, text_digest
from maild.routing.chain import Route, route
from maild.routing.model import Rules, SupportAddress
from maild.routing.priority import PriorityChoice, choose_priority
from maild.sla.policy_clock import Deadlines, deadlines
from maild.tickets.correlate import names_a_ticket
from maild.tickets.numbering import TicketNumbering
from maild.trust.entitlement import Entitlement, entitlement
from maild.trust.verdict import Trust, assess


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


@dataclass(frozen=True)
class Opening:
    """How a message that opens a ticket is routed, prioritised, checked and timed."""

    routed: Route
    chosen: PriorityChoice
    entitled: Entitlement
    queue: str
    priority: str
    language: str
    required: RequiredItems
    results: tuple[ItemResult, ...]
    due: Deadlines
    standing: SenderStanding
    digest: str


class Reading:
    """One message read under one set of rules; its parts are worked out when first asked for."""

    def __init__(self, mail: ParsedMail, envelope: Envelope, rules: Rules,
                 identity: Identity) -> None:
        self.mail = mail
        self.envelope = envelope
        self.rules = rules
        self.identity = identity

    @cached_property
    def support(self) -> SupportAddress:
        """The served address the message was sent to."""
        return support_address_of(self.envelope, self.mail, self.rules)

    @cached_property
    def sender(self) -> Address | None:
        """The author: From, else the envelope sender; None when neither has an address."""
        if self.mail.sender is not None:
            return self.mail.sender
        envelope_sender = self.envelope.sender
        address = normalize_address(envelope_sender) if envelope_sender else None
        return Address(name="", address=address) if address else None

    @cached_property
    def sender_address(self) -> str | None:
        """The author's address in lower case."""
        return self.sender.address.lower() if self.sender else None

    @cached_property
    def sender_domain(self) -> str | None:
        """The registrable domain of the author's address ("" when it has none)."""
        address = self.sender_address
        return registrable_domain(address_domain(address)) if address else None

    @cached_property
    def machine(self) -> MachineVerdict | None:
        """The machine kind of the message with its signal; None when a person wrote it."""
        return classify_machine(self.mail, self.envelope.sender, self.identity.domains,
                                self.identity.addresses)

    @cached_property
    def trust(self) -> Trust:
        """Whether the organisation's own MTA vouched for the author."""
        return assess(self.mail, self.sender_address, self.rules)

    @cached_property
    def answer_to(self) -> tuple[str | None, str]:
        """Who an acknowledgement would go to, and by which header."""
        return ack_recipient(self.mail, self.rules)

    @cached_property
    def opening(self) -> Opening:
        """How the message is taken in if it opens a ticket."""
        mail, rules, sender = self.mail, self.rules, self.sender_address
        routed = route(sender, self.support, rules)
        customer = routed.customer
        policy = rules.policies[routed.policy]
        # What the mail asks for; whether the sender may have it is the entitlement's question
        # (the customer's contact list counts there, under `entitled = "contacts"`).
        chosen = choose_priority(mail, policy, customer=replace(customer, contacts=())
                                 if customer else None, sender=sender, private=routed.private)
        entitled = entitlement(customer, policy, sender=sender, private=routed.private,
                               trust=self.trust)
        queue = routed.queue
        if entitled.status == "suspended" and rules.suspended_queue:
            queue = rules.suspended_queue
        priority = chosen.level if entitled.prioritised else policy.lowest_priority
        language = customer.language if customer else guess_language(
            f"{mail.subject}\n{mail.text}") or "sv"
        # Support on hold is not given: a suspended customer is asked for nothing technical.
        required = required_items(policy, mail) if entitled.status != "suspended" else \
            RequiredItems((), {})
        results = tuple(check_items(mail, required.items,
                                    no_machine_signal=self.machine is None))
        due = deadlines(policy, priority, self.envelope.received_at, queue) \
            if entitled.committed else Deadlines()
        standing = sender_standing(sender, customer, routed.private, rules,
                                   trusted=self.trust.trusted, committed=entitled.committed)
        return Opening(routed=routed, chosen=chosen, entitled=entitled,
                       queue=queue, priority=priority, language=language, required=required,
                       results=results, due=due, standing=standing,
                       digest=text_digest(mail.text))

    def work_out(self, numbering: TicketNumbering) -> None:
        """Work out now what the decision will most likely ask for.

        A person's mail that can join no ticket (it names none, or its author is not
        authenticated) opens one, so its opening is worked out too; a follow-up's is
        left until correlation says it needs one. A part that raises is left to raise
        again in the decision.
        """
        try:
            if self.machine is not None:
                return
            if self.trust.trusted and self.sender_address is not None \
                    and names_a_ticket(self.mail, numbering):
                return
            self.answer_to  # noqa: B018 - worked out for the decision
            self.opening  # noqa: B018 - worked out for the decision
        except Exception:  # noqa: S110 - the decision asks again and records the failure
            pass
