"""Mail addresses as RFC 5322 writes them: address lists read from undecoded header text.

The structure of an address header (quoted strings, comments, `<angle
addresses>`, groups, commas) is read from the raw header value before any
RFC 2047 encoded word is decoded, so an encoded word in a display name can
never become an address; only the display name is decoded afterwards. The
reader is one linear pass with no recursion: deep comment nesting costs what
its length costs. Domains are lower-cased and kept in the IDN form written.
What cannot be read as a mailbox is left out and named in the defects, never
guessed at.

`mailbox_key` is the form in which two addresses that reach the same mailbox
compare equal (case, `+tag` sub-addresses, dots at Gmail), for counting what
was sent to one person.
"""

from __future__ import annotations

import contextlib
import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from email.header import decode_header
from typing import NamedTuple

from maild.classify.sender import MAX_DOMAIN, normalize_domain

# One address header is read up to this many characters, and yields at most this
# many addresses: enough for any real To/Cc, bounded for hostile ones.
MAX_HEADER_CHARS = 64 * 1024
MAX_ADDRESSES = 1000
_MAX_NAME = 512
# The longest parts of an address read as one. A domain name has at most 253 characters
# in labels of at most 63 (RFC 1035); a local part may have 64 octets (RFC 5321), but
# mail systems write longer ones, so four times that is read. Every column that keeps an
# address (512 characters) holds the longest.
MAX_LOCAL = 256
MAX_LABEL = 63

_SPECIALS = frozenset('()<>,;:"')
# RFC 5322 atext, plus any non-ASCII character (RFC 6532).
_ATEXT = re.compile(r"[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~\u0080-\U0010ffff]+")
_DOT_ATOM = re.compile(rf"{_ATEXT.pattern}(?:\.+{_ATEXT.pattern})*")
_QUOTED_LOCAL = re.compile(r'"(?:[^"\\\r\n]|\\.)*"')
_LABEL = re.compile(r"[\w-]+")
_DOMAIN_LITERAL = re.compile(r"\[[^\[\]\\\s]*\]")
# Providers known to deliver `a.n.na@` to `anna@`.
_DOTLESS_PROVIDERS = frozenset({"gmail.com", "googlemail.com"})


@dataclass(frozen=True)
class Address:
    """A mailbox: the decoded display name (may be empty) and the address (normalised domain)."""

    name: str
    address: str


class _Token(NamedTuple):
    """One lexical token of an address header (a tuple: made for every word of a header)."""

    kind: str    # "atom", "quoted", "comment", "angle", "special", "space"
    raw: str     # as written (quoted strings with their quotes)
    text: str    # the content (quotes, brackets and escapes removed)


def read_address_list(value: str) -> tuple[tuple[Address, ...], tuple[str, ...]]:
    """The mailboxes an address header names, in order, and what could not be read."""
    simple = _simple_list(value)
    return simple if simple is not None else _read_tokens(value)


# A header with one of these has a quoted string, a comment, a group or a route: it goes
# to the tokens at once (the pattern below refuses each of them anyway).
_NOT_SIMPLE = frozenset('"();:')
# One mailbox as most are written, `Name <address>` or a bare address, each word as
# `_tokens` reads one (`_ATOM_RUN`).
_NAMED_MAILBOX = re.compile(
    r'\s*(?:([^()<>,;:"\s]+(?:\s+[^()<>,;:"\s]+)*)\s*)?<([^()<>,;:"\s]+)>\s*')
_BARE_MAILBOX = re.compile(r'\s*([^()<>,;:"\s]+)\s*')


def _simple_list(value: str) -> tuple[tuple[Address, ...], tuple[str, ...]] | None:
    """`_read_tokens(value)` for a header as most are written (`Name <address>` or bare
    addresses, separated by commas) that reads without a defect; None for any other.

    Such a header splits at its commas as its tokens would (no angle address holds one),
    and each mailbox is read as `_mailbox` reads its tokens.
    """
    if len(value) > MAX_HEADER_CHARS or not _NOT_SIMPLE.isdisjoint(value):
        return None
    pieces = value.split(",")
    if len(pieces) > MAX_ADDRESSES:
        return None
    found: list[Address] = []
    for piece in pieces:
        if "<" in piece:
            named = _NAMED_MAILBOX.fullmatch(piece)
            if named is None:
                return None
            phrase, spec = named.group(1, 2)
        else:
            bare = _BARE_MAILBOX.fullmatch(piece)
            if bare is None:
                return None
            phrase, spec = None, bare.group(1)
        if "=?" in spec:  # an encoded word in the address: `_unencoded_spec` decides
            return None
        address = normalize_address(spec)
        if address is None:
            return None
        found.append(Address(name=_decoded_name(_unquoted(" ".join(phrase.split())))
                             if phrase else "", address=address))
    return tuple(found), ()


def _read_tokens(value: str) -> tuple[tuple[Address, ...], tuple[str, ...]]:
    """`read_address_list`, token by token: every header, whatever it holds."""
    defects: list[str] = []
    if len(value) > MAX_HEADER_CHARS:
        defects.append(f"address header longer than {MAX_HEADER_CHARS} characters: cut")
        value = value[:MAX_HEADER_CHARS]
    found: list[Address] = []
    for item in _items(_tokens(value, defects)):
        if len(found) >= MAX_ADDRESSES:
            defects.append(f"more than {MAX_ADDRESSES} addresses in one header: the rest ignored")
            break
        mailbox = _mailbox(item, defects)
        if mailbox is not None:
            found.append(mailbox)
    return tuple(found), tuple(dict.fromkeys(defects))


def normalize_address(address: str) -> str | None:
    """`local@domain` with the domain lower-cased (in the IDN form written), or None if invalid.

    The address keeps the form its mail system wrote (`xn--` stays `xn--`), so
    replies go where they would have gone; identities are compared with
    `address_key` and `mailbox_key`, which decode `xn--` labels.
    """
    address = address.strip()
    local, at, domain = address.rpartition("@")
    if (not at or len(local) > MAX_LOCAL or not _valid_local(local)
            or _normal_domain(domain) is None):
        return None
    return f"{local}@{unicodedata.normalize('NFC', domain.strip().rstrip('.').lower())}"


def address_key(address: str) -> str:
    """`address` as maild compares identities: lower-case, the domain in Unicode form.

    `Anna@XN--RKSMRGS-5WAO1O.SE` and `anna@räksmörgås.se` give the same key;
    a `+tag` still makes a different address (see `mailbox_key` for counting).
    """
    local, at, domain = address.strip().lower().rpartition("@")
    if not at:
        return address.strip().lower()
    return f"{local}@{_normal_domain(domain) or domain}"


def mailbox_key(address: str) -> str:
    """The mailbox `address` reaches: lower-case, without `+tag`, dots ignored at Gmail.

    `Anna.Lind+ack7@Example.SE` and `anna.lind@example.se` give the same key.
    Text that is no address is returned lower-cased.
    """
    local, at, domain = address.strip().lower().rpartition("@")
    if not at:
        return address.strip().lower()
    domain = _normal_domain(domain) or domain
    if not local.startswith('"'):
        local = local.split("+", 1)[0] or local
        if domain in _DOTLESS_PROVIDERS:
            local = local.replace(".", "") or local
    return f"{local}@{domain}"


def _normal_domain(domain: str) -> str | None:
    domain = domain.strip()
    if len(domain) > 4 * MAX_DOMAIN:  # longer than any name, in any form
        return None
    if _DOMAIN_LITERAL.fullmatch(domain):
        return domain.lower() if len(domain) <= MAX_DOMAIN else None
    clean = normalize_domain(unicodedata.normalize("NFC", domain))
    labels = clean.split(".")
    if not clean or len(clean) > MAX_DOMAIN or not all(
            len(label) <= MAX_LABEL and _LABEL.fullmatch(label) for label in labels):
        return None
    return clean


def _valid_local(local: str) -> bool:
    return bool(_DOT_ATOM.fullmatch(local) or _QUOTED_LOCAL.fullmatch(local))


_SPACE_RUN = re.compile(r"\s+")
_ATOM_RUN = re.compile(r'[^()<>,;:"\s]+')


def _tokens(value: str, defects: list[str]) -> Iterator[_Token]:
    """The lexical tokens of an address header, in one pass without recursion."""
    index, length = 0, len(value)
    while index < length:
        char = value[index]
        if char == '"':
            end, text = _quoted(value, index, defects)
            yield _Token("quoted", value[index:end], text)
        elif char == "(":
            end, text = _comment(value, index, defects)
            yield _Token("comment", value[index:end], text)
        elif char == "<":
            end = _angle_end(value, index)
            closed = value[end - 1] == ">" and end - 1 > index
            if not closed:
                defects.append("unterminated <address>")
            yield _Token("angle", value[index:end], value[index + 1:end - 1 if closed else end])
        elif char in _SPECIALS:
            end = index + 1
            yield _Token("special", char, char)
        elif char.isspace():
            match = _SPACE_RUN.match(value, index)
            end = match.end() if match else index + 1
            yield _Token("space", value[index:end], " ")
        else:
            match = _ATOM_RUN.match(value, index)
            end = match.end() if match else index + 1
            yield _Token("atom", value[index:end], value[index:end])
        index = end


def _quoted(value: str, start: int, defects: list[str]) -> tuple[int, str]:
    """The end of the quoted string opening at `start`, and its unescaped content."""
    pieces: list[str] = []
    index = start + 1
    while index < len(value):
        char = value[index]
        if char == "\\" and index + 1 < len(value):
            pieces.append(value[index + 1])
            index += 2
            continue
        if char == '"':
            return index + 1, "".join(pieces)
        pieces.append(char)
        index += 1
    defects.append("unterminated quoted string in an address header")
    return len(value), "".join(pieces)


def _comment(value: str, start: int, defects: list[str]) -> tuple[int, str]:
    """The end of the (possibly nested) comment opening at `start`, and its text."""
    depth = 0
    index = start
    while index < len(value):
        char = value[index]
        if char == "\\":
            index += 2
            continue
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                return index + 1, value[start + 1:index].strip()
        index += 1
    defects.append("unterminated comment in an address header")
    return len(value), value[start + 1:].strip()


def _angle_end(value: str, start: int) -> int:
    """The index after the `>` that closes the angle address at `start` (quotes respected)."""
    index = start + 1
    while index < len(value):
        char = value[index]
        if char == '"':
            index, _ = _quoted(value, index, [])
            continue
        if char == ">":
            return index + 1
        index += 1
    return len(value)


def _items(tokens: Iterable[_Token]) -> Iterator[list[_Token]]:
    """The tokens of each mailbox: split at `,` and `;`, group names (`name:`) dropped."""
    current: list[_Token] = []
    substance = False       # whether `current` holds more than space and comments
    for token in tokens:
        if token.kind == "special" and token.text in ",;":
            if substance:
                yield current
            current, substance = [], False
        elif token.kind == "special" and token.text == ":":
            current, substance = [], False    # what came before was the name of a group
        else:
            current.append(token)
            substance = substance or token.kind not in ("space", "comment")
    if substance:
        yield current


def _mailbox(item: list[_Token], defects: list[str]) -> Address | None:
    angles = [index for index, token in enumerate(item) if token.kind == "angle"]
    if len(angles) > 1:
        defects.append("a mailbox with more than one <address>: left out")
        return None
    if angles:
        after = [t for t in item[angles[0] + 1:] if t.kind not in ("space", "comment")]
        if after:
            defects.append("text after an <address>: left out")
            return None
        spec = _addr_spec(list(_tokens(_strip_route(item[angles[0]].text), [])))
        name = _phrase(item[:angles[0]])
    else:
        spec = _addr_spec(item)
        comments = [re.sub(r"[()]", "", t.text) for t in item if t.kind == "comment"]
        comments = [comment for comment in comments if comment.strip()]
        name = comments[-1] if comments else ""
    if spec and "=?" in spec:
        spec = _unencoded_spec(spec, defects)
    address = normalize_address(spec) if spec else None
    if address is None:
        shown = "".join(token.raw for token in item).strip()[:80]
        defects.append(f"not an address: {shown!r}")
        return None
    return Address(name=_decoded_name(name), address=address)


def _unencoded_spec(spec: str, defects: list[str]) -> str:
    """`spec` with encoded words in its local part or domain decoded where they spell non-ASCII.

    RFC 2047 allows no encoded word in an address, but Python's email package
    writes `linnea@=?utf-8?b?...?=.se` for a non-ASCII domain. Such a word is
    decoded only inside its own part and only to non-ASCII text (an IDN); it
    can never spell `@`, a separator, or an ASCII name such as `customer.se`.
    """
    local, _, domain = spec.rpartition("@")
    parts: list[str] = []
    for written in (local, domain):
        decoded = _decoded_name(written) if "=?" in written else written
        if decoded != written and not decoded.isascii() and not any(
                ch in decoded for ch in '@<>,;:"() '):
            defects.append("encoded word in an address: read as non-ASCII text")
            parts.append(decoded)
        else:
            parts.append(written)
    return f"{parts[0]}@{parts[1]}"


def _strip_route(text: str) -> str:
    """An angle address without its obsolete source route (`@relay1,@relay2:`)."""
    text = text.strip()
    if text.startswith("@") and ":" in text:
        return text.split(":", 1)[1]
    return text


def _addr_spec(tokens: list[_Token]) -> str | None:
    """The address the tokens spell, or None when they are not one addr-spec.

    Comments are ignored and whitespace is allowed only next to `@` and `.`
    (the obsolete syntax); words separated by spaces are a phrase, not an address.
    """
    parts = [t for t in tokens if t.kind != "comment"]
    while parts and parts[0].kind == "space":
        parts.pop(0)
    while parts and parts[-1].kind == "space":
        parts.pop()
    text: list[str] = []
    for index, token in enumerate(parts):
        if token.kind == "space":
            before, after = parts[index - 1].raw, parts[index + 1].raw
            if not (before.endswith(("@", ".")) or after.startswith(("@", "."))):
                return None
            continue
        if token.kind not in ("atom", "quoted"):
            return None
        text.append(token.raw)
    return "".join(text) or None


def _phrase(tokens: list[_Token]) -> str:
    """A display name as written: quoted strings unquoted, comments dropped."""
    words: list[str] = []
    for token in tokens:
        if token.kind == "comment":
            continue
        if token.kind == "space":
            if words and words[-1] != " ":
                words.append(" ")
            continue
        words.append(token.text)
    return _unquoted("".join(words).strip())


def _unquoted(name: str) -> str:
    """A display name without the single quotes around it: Outlook writes
    'anna@customer.se' <anna@customer.se> when the name is an address."""
    if len(name) >= 2 and name[0] == name[-1] == "'":
        return name[1:-1].strip()
    return name


def _decoded_name(name: str) -> str:
    """The display name with RFC 2047 encoded words decoded; a broken one stays as written."""
    name = name[:_MAX_NAME * 4]
    if "=?" in name:
        with contextlib.suppress(Exception):  # any broken encoded word: keep the text
            name = "".join(chunk if isinstance(chunk, str) else _bytes_text(chunk, charset)
                           for chunk, charset in decode_header(name))
    name = " ".join("".join(ch for ch in name if ch.isprintable() or ch == " ").split())
    return name[:_MAX_NAME]


def _bytes_text(data: bytes, charset: str | None) -> str:
    for candidate in (charset, "utf-8"):
        if candidate:
            try:
                return data.decode(candidate)
            except (LookupError, UnicodeDecodeError, ValueError):
                continue
    return data.decode("latin-1")
