"""Checking a composed mail against the rules of `wire.py`: what a strict relay would refuse.

`wire_problems(raw)` lists every problem found (an empty list: the mail is
clean): a line ending other than CRLF, a line over 998 octets, a header line
that is neither a field nor a continuation, a missing or repeated From, Date or
Message-ID, an encoded word over 75 characters, non-ASCII in the header without
an address that needs it, and an address header whose addresses do not parse
as addresses (an encoded word where the address should be, for instance).
"""

from __future__ import annotations

import re
from email.utils import getaddresses

from maild.respond.address import UnusableAddress, mail_address

_FIELD = re.compile(rb"[!-9;-~]+:")
_ENCODED_WORD = re.compile(r"=\?[^?\s]+\?[bBqQ]\?[^?\s]*\?=")
_ADDRESS_FIELDS = ("from", "to", "cc", "reply-to", "sender")
_ONCE = ("from", "date", "message-id")
_AT_MOST_ONCE = ("to", "cc", "reply-to", "subject", "in-reply-to", "references", "sender")


def _line_problems(raw: bytes) -> list[str]:
    problems = []
    if re.search(rb"(?<!\r)\n", raw):
        problems.append("a line ends in a bare LF")
    if re.search(rb"\r(?!\n)", raw):
        problems.append("a bare CR")
    if raw and not raw.endswith(b"\r\n"):
        problems.append("the mail does not end with CRLF")
    longest = max((len(line) for line in raw.split(b"\r\n")), default=0)
    if longest > 998:
        problems.append(f"a line of {longest} octets (at most 998)")
    return problems


def _fields(head: bytes) -> tuple[list[tuple[str, str]], list[str]]:
    """The header fields, unfolded, and the problems of the header block's shape."""
    fields: list[tuple[str, str]] = []
    problems: list[str] = []
    for line in head.split(b"\r\n"):
        if line[:1] in (b" ", b"\t"):
            if not fields:
                problems.append("the header starts with a continuation line")
                continue
            name, value = fields[-1]
            fields[-1] = (name, value + line.decode("utf-8", "replace"))
        elif _FIELD.match(line):
            name, _, value = line.decode("utf-8", "replace").partition(":")
            fields.append((name, value))
        else:
            problems.append(f"a header line that is not a field: {line[:60]!r}")
    return fields, problems


def _address_problems(name: str, value: str) -> list[str]:
    problems = []
    parsed = getaddresses([value])
    if not parsed or any(not address for _, address in parsed):
        return [f"{name}: does not parse as addresses: {value[:80]!r}"]
    for _, address in parsed:
        if "=?" in address:
            problems.append(f"{name}: an encoded word instead of an address: {address[:80]!r}")
            continue
        try:
            mail_address(address)
        except UnusableAddress as error:
            problems.append(f"{name}: {error}")
    return problems


def wire_problems(raw: bytes) -> list[str]:
    """Every way `raw` breaks the composition rules; empty when it is clean."""
    problems = _line_problems(raw)
    head, separator, _ = raw.partition(b"\r\n\r\n")
    if not separator:
        return [*problems, "no empty line between header and body"]
    fields, shape = _fields(head)
    problems += shape
    names = [name.lower() for name, _ in fields]
    for required in _ONCE:
        if names.count(required) != 1:
            problems.append(f"{names.count(required)} {required} fields (exactly one)")
    for single in _AT_MOST_ONCE:
        if names.count(single) > 1:
            problems.append(f"{names.count(single)} {single} fields (at most one)")
    international = False
    for name, value in fields:
        if name.lower() in _ADDRESS_FIELDS:
            problems += _address_problems(name, value)
            international |= not value.isascii()
        long_words = [word for word in _ENCODED_WORD.findall(value) if len(word) > 75]
        if long_words:
            problems.append(f"{name}: an encoded word of {len(long_words[0])} characters")
    non_ascii = [name for name, value in fields if not value.isascii()]
    if non_ascii and not international:
        problems.append(f"non-ASCII in {', '.join(non_ascii)} without an address that needs it")
    return problems
