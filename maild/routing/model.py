"""The routing rules as immutable data: customers, policies, queues, support addresses."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from maild.addresses import address_key
from maild.classify.sender import PrivateDomains, address_domain, parent_domains
from maild.sla import Calendar, PenaltySchedule

CUSTOMER_STATUSES = ("active", "suspended", "no-agreement")
ENTITLED = ("domain", "contacts")            # who may open cases under a policy
PRIVATE_ADDRESSES = ("as-indicated", "lowest")  # the priority of a contact's private address
LANGUAGES = ("sv", "en")
REQUIRED_ITEMS = (
    "description", "screenshot", "occurred_at", "browser", "os",
    "campaign_number", "company", "contact_name_title", "contact_details",
)


@dataclass(frozen=True)
class Contact:
    """A person registered to open cases for a customer."""

    address: str
    name: str
    title: str | None = None


@dataclass(frozen=True)
class Customer:
    """A customer: the domains its mail comes from, its contract and its queue."""

    id: str
    name: str
    domains: tuple[str, ...]
    policy: str
    queue: str | None
    language: str
    status: str
    contacts: tuple[Contact, ...] = ()
    queue_by_address: Mapping[str, str] = field(default_factory=dict)
    timezone: str | None = None   # the customer's own zone: times in its mail are given in it
    authenticated_by: tuple[str, ...] = ()   # trust paths besides DMARC (maild.trust.verdict)

    def is_contact(self, address: str | None) -> bool:
        """Whether `address` is one of the customer's registered contacts (IDN forms alike)."""
        if not address:
            return False
        wanted = _comparable(address)
        return any(_comparable(contact.address) == wanted for contact in self.contacts)


@dataclass(frozen=True)
class PriorityTarget:
    """The response and resolution targets of one priority level."""

    response: str
    resolution: str | None = None
    action: str | None = None
    hours: str | None = None
    holidays: str | None = None
    escalate_on_open: bool = False
    markers: tuple[str, ...] = ()
    keywords: tuple[str, ...] = ()


@dataclass(frozen=True)
class QueueService:
    """A policy's own terms for the cases that land in one queue (ClearOn's technical support).

    Hours, holidays and targets left out are the priority's (or the policy's).
    """

    queue: str
    hours: str | None = None
    holidays: str | None = None
    response: str | None = None
    action: str | None = None
    resolution: str | None = None


@dataclass(frozen=True)
class RequiredWhen:
    """An item required only when the case concerns something: its text mentions a word."""

    item: str
    mentions: tuple[str, ...]


@dataclass(frozen=True)
class Policy:
    """A contract (SLA policy): opening hours, priorities and their targets, required items."""

    id: str
    name: str
    hours: str
    holidays: str
    priorities: tuple[str, ...]
    default_priority: str
    required: tuple[str, ...]
    targets: Mapping[str, PriorityTarget]
    max_contacts: int | None = None
    closed: tuple[str, ...] = ()
    timezone: str = "Europe/Stockholm"
    escalation: tuple[str, ...] = ()
    warn_at_percent: int | None = None
    penalty: PenaltySchedule | None = None
    calendars: Mapping[str, Calendar] = field(default_factory=dict)
    trust_priority_headers: str | None = None
    confirm_complete: bool = False
    required_when: tuple[RequiredWhen, ...] = ()
    queue_services: Mapping[str, QueueService] = field(default_factory=dict)
    review_required: tuple[str, ...] = ()
    entitled: str = "domain"
    private_addresses: str = "as-indicated"

    @property
    def lowest_priority(self) -> str:
        """The least urgent level (priorities are listed most urgent first)."""
        return self.priorities[-1]

    def calendar(self, priority: str | None = None, queue: str | None = None) -> Calendar:
        """The opening hours that count for `priority` in `queue`.

        The queue's own service hours first, then the priority's, then the policy's.
        """
        if queue is not None and f"queue:{queue}" in self.calendars:
            return self.calendars[f"queue:{queue}"]
        return self.calendars.get(priority or "", self.calendars[""])


@dataclass(frozen=True)
class Queue:
    """A team that reads tickets."""

    id: str
    name: str
    team: tuple[str, ...]
    hours: str | None = None
    escalation: tuple[str, ...] = ()
    names: Mapping[str, str] = field(default_factory=dict)

    def name_in(self, language: str) -> str:
        """The name customers see in `language`: `names`, else `name` (Swedish), else "Support"."""
        if language in self.names:
            return self.names[language]
        return self.name if language == "sv" else "Support"


@dataclass(frozen=True)
class SupportAddress:
    """An address maild serves, with the queue its mail goes to by default."""

    address: str
    queue: str


@dataclass(frozen=True)
class NoAgreementRoute:
    """Where mail from unknown senders and non-contact private senders goes."""

    policy: str
    queue: str


def _comparable(address: str) -> str:
    local, _, domain = address.strip().lower().rpartition("@")
    return f"{local}@{address_domain('@' + domain)}"


def base_address(address: str) -> str:
    """`address` lower-cased, without its +tag: Support+webb@Example.se → support@example.se."""
    local, at, domain = address.strip().lower().rpartition("@")
    if not at:
        return address.strip().lower()
    return f"{local.split('+', 1)[0]}@{domain}"


@dataclass(frozen=True)
class Staff:
    """Who answers for the support organisation: their mail on a ticket is a response."""

    addresses: frozenset[str] = frozenset()
    domains: frozenset[str] = frozenset()
    authenticated_by: tuple[str, ...] = ()   # trust paths besides DMARC (maild.trust.verdict)

    def __contains__(self, address: object) -> bool:
        if not isinstance(address, str):
            return False
        address = address.strip().lower()
        return address in self.addresses or any(
            domain in self.domains for domain in parent_domains(address_domain(address)))


@dataclass(frozen=True)
class TrustSettings:
    """Whose Authentication-Results maild believes, and where in the header they must stand.

    `received_hops` is how many Received lines of the organisation's own relays may
    stand above a believed header (maild's own Received line is not counted).
    """

    authserv_ids: frozenset[str] = frozenset()
    received_hops: int = 0


@dataclass(frozen=True)
class Rules:
    """A complete, validated set of rules; replaced whole on reload, never changed."""

    directory: Path
    version: str
    customers: Mapping[str, Customer]
    policies: Mapping[str, Policy]
    queues: Mapping[str, Queue]
    addresses: tuple[SupportAddress, ...]
    no_agreement: NoAgreementRoute
    private: PrivateDomains
    templates: Mapping[str, str] = field(default_factory=dict)
    staff: Staff = field(default_factory=Staff)
    trust: TrustSettings = field(default_factory=TrustSettings)
    suspended_queue: str | None = None
    _domain_index: Mapping[str, str] = field(default_factory=dict)
    _contact_index: Mapping[str, tuple[str, Contact]] = field(default_factory=dict)

    def customer_for_domain(self, domain: str) -> Customer | None:
        """The customer owning `domain` or its nearest parent domain, if any."""
        for candidate in parent_domains(domain):
            customer_id = self._domain_index.get(candidate)
            if customer_id is not None:
                return self.customers[customer_id]
        return None

    def contact(self, address: str) -> tuple[Customer, Contact] | None:
        """The customer and registered contact for `address` (case and IDN form ignored), if any."""
        found = self._contact_index.get(address_key(address))
        if found is None:
            return None
        return self.customers[found[0]], found[1]

    def support_address(self, address: str) -> SupportAddress | None:
        """The served support address that `address` (perhaps with a +tag) names, if any."""
        wanted = base_address(address)
        for served in self.addresses:
            if served.address == wanted:
                return served
        return None

    @property
    def default_address(self) -> SupportAddress:
        """The first served address: used when a message names none of them."""
        return self.addresses[0]
