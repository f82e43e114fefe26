"""Addresses as maild writes them into mail and envelopes: internationalised, checked, bounded.

The domain is always written as its A-label (`xn--rksmrgs-5wao1o.se` for
`räksmörgås.se`, IDNA 2008 with UTS 46 mapping), which every relay and every
mail client understands. A non-ASCII local part stays UTF-8 and makes the
message one that only an SMTPUTF8 relay may carry (RFC 6531/6532). What cannot
be an address at all (no `@`, control characters, a local part over 64 octets,
more than 254 octets in all, a domain IDNA refuses) raises `UnusableAddress`
with the reason, so the one message concerned fails and nothing else does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import idna

MAX_LOCAL = 64       # octets, RFC 5321 4.5.3.1.1
MAX_ADDRESS = 254    # octets of local@domain, RFC 5321 path limit less the brackets
MAX_DOMAIN = 253

_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~\-\u0080-\U0010ffff]"
_DOT_ATOM = re.compile(rf"{_ATEXT}+(?:\.{_ATEXT}+)*")
_ASCII_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?|[A-Za-z0-9]")
_LITERAL = re.compile(r"\[[!-Z^-~]{1,253}\]")
_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f\u0085\u2028\u2029]")


class UnusableAddress(ValueError):
    """A text that cannot be written as an address in a mail or an SMTP envelope."""


@dataclass(frozen=True)
class MailAddress:
    """An address ready for the wire: local part as given (quoted if it must be), A-label domain."""

    local: str
    domain: str

    @property
    def needs_smtputf8(self) -> bool:
        """Whether only an SMTPUTF8 relay may carry mail to (or from) this address."""
        return not self.local.isascii()

    def __str__(self) -> str:
        return f"{self.local}@{self.domain}"


@lru_cache(maxsize=1024)
def mail_address(text: str) -> MailAddress:
    """`text` (`local@domain`, optionally in angle brackets) as a wire address.

    Answers are remembered (a refusal is not): the support and team addresses of the
    rules are written into every copy to the team.
    """
    address = text.strip()
    if address.startswith("<") and address.endswith(">"):
        address = address[1:-1]
    if _FORBIDDEN.search(address):
        raise UnusableAddress(f"the address {_shown(address)} contains control characters")
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain:
        raise UnusableAddress(f"{_shown(address)} is not an address (local@domain)")
    wire = MailAddress(_local_part(local, address), wire_domain(domain))
    if len(str(wire).encode("utf-8")) > MAX_ADDRESS:
        raise UnusableAddress(f"the address {_shown(address)} is longer than {MAX_ADDRESS} "
                              "octets (RFC 5321)")
    return wire


def wire_domain(domain: str) -> str:
    """The domain as ASCII: lower-case, A-labels for internationalised labels."""
    name = domain.rstrip(".")
    if _LITERAL.fullmatch(name):
        return name
    if len(name) > 4 * MAX_DOMAIN:
        raise UnusableAddress(f"the domain {_shown(name)} is too long")
    if name.isascii():
        ascii_name = name.lower()
    else:
        try:
            ascii_name = idna.encode(name, uts46=True).decode("ascii")
        except (idna.IDNAError, UnicodeError, ValueError) as error:
            raise UnusableAddress(f"the domain {_shown(name)} is not a valid internationalised "
                                  f"domain name ({error})") from None
    labels = ascii_name.split(".")
    if len(ascii_name) > MAX_DOMAIN or not all(_ASCII_LABEL.fullmatch(lab) for lab in labels):
        raise UnusableAddress(f"{_shown(name)} is not a valid domain name")
    return ascii_name


def _local_part(local: str, address: str) -> str:
    """The local part as written on the wire: a dot-atom as is, anything else quoted."""
    if len(local.encode("utf-8")) > MAX_LOCAL + 2:
        raise UnusableAddress(f"the local part of {_shown(address)} is longer than {MAX_LOCAL} "
                              "octets (RFC 5321)")
    if _DOT_ATOM.fullmatch(local) and len(local.encode("utf-8")) <= MAX_LOCAL:
        return local
    inner = local[1:-1] if len(local) >= 2 and local[0] == local[-1] == '"' else local
    inner = re.sub(r"\\(.)", r"\1", inner)
    if len(inner.encode("utf-8")) > MAX_LOCAL:
        raise UnusableAddress(f"the local part of {_shown(address)} is longer than {MAX_LOCAL} "
                              "octets (RFC 5321)")
    return '"' + inner.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _shown(text: str) -> str:
    """`text` for an error message: bounded, control characters made visible."""
    shown = text if len(text) <= 80 else f"{text[:60]}… ({len(text)} characters)"
    return repr(shown)
