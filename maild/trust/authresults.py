"""Parsing one Authentication-Results header field (RFC 8601) into data.

The parser is total and bounded: a value it cannot read gives None, never an
exception, and comments may nest only so deep.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

MAX_LENGTH = 8192
MAX_RESULTS = 64
MAX_COMMENT_DEPTH = 16
_KEYWORD = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?$")
_VERSION = re.compile(r"^\d+$")


@dataclass(frozen=True)
class MethodResult:
    """One `method=result` of a header, with its reason and `ptype.property` values."""

    method: str
    result: str
    reason: str | None = None
    properties: Mapping[str, str] = field(default_factory=dict)

    def property(self, *names: str) -> str | None:
        """The first of `names` (such as "header.d") this result carries, lower-cased."""
        for name in names:
            value = self.properties.get(name)
            if value:
                return value
        return None

    def to_json(self) -> dict[str, str]:
        """The result as flat JSON: method, result, reason and each property."""
        data = {"method": self.method, "result": self.result}
        if self.reason:
            data["reason"] = self.reason
        data.update(self.properties)
        return data


@dataclass(frozen=True)
class AuthenticationResults:
    """A parsed header: who wrote it (authserv-id) and what it found."""

    authserv_id: str
    results: tuple[MethodResult, ...]


class _Unreadable(Exception):
    """The value breaks the grammar in a way the parser does not guess around."""


# A comment with no parenthesis or backslash in it: what MTAs write, "(p=reject)".
_FLAT_COMMENT = re.compile(r"\([^()\\]*\)")


def _segments(value: str) -> list[list[str]]:
    """The value split at `;` into whitespace-separated items, comments removed."""
    if '"' not in value:
        # No quoted string, and every comment flat: a comment ends an item as a space does,
        # a backslash or ")" outside one is a character, and the rest splits as
        # `_read_segments` reads it.
        flat = _FLAT_COMMENT.sub(" ", value)
        if "(" not in flat:
            return [_join_equals(segment.split()) for segment in flat.split(";")]
    return _read_segments(value)


def _read_segments(value: str) -> list[list[str]]:
    """`_segments` of any value, a character at a time: quotes, escapes, nested comments."""
    segments: list[list[str]] = [[]]
    item: list[str] = []
    depth = 0
    quoted = False
    escaped = False

    def flush() -> None:
        if item:
            segments[-1].append("".join(item))
            item.clear()

    for char in value:
        if escaped:
            if quoted:
                item.append(char)
            escaped = False
        elif char == "\\" and (quoted or depth):
            escaped = True
        elif quoted:
            if char == '"':
                quoted = False
            else:
                item.append(char)
        elif depth:
            if char == "(":
                depth += 1
                if depth > MAX_COMMENT_DEPTH:
                    raise _Unreadable("comments nested too deep")
            elif char == ")":
                depth -= 1
        elif char == "(":
            flush()
            depth = 1
        elif char == '"':
            quoted = True
        elif char == ";":
            flush()
            segments.append([])
        elif char.isspace():
            flush()
        else:
            item.append(char)
    if quoted or depth:
        raise _Unreadable("an unclosed quote or comment")
    flush()
    return [_join_equals(segment) for segment in segments]


def _join_equals(items: list[str]) -> list[str]:
    """Rejoin `key = value` written with spaces around `=` (CFWS is allowed there)."""
    joined: list[str] = []
    for item in items:
        if joined and (item.startswith("=") or (
                joined[-1].endswith("=") and joined[-1].count("=") == 1)):
            joined[-1] += item
        else:
            joined.append(item)
    return joined


def _method_result(items: list[str]) -> MethodResult:
    head, equals, result = items[0].partition("=")
    method = head.split("/", 1)[0].strip().lower()
    if not equals or not _KEYWORD.match(method) or not _KEYWORD.match(result):
        raise _Unreadable(f"'{items[0]}' is not method=result")
    reason: str | None = None
    properties: dict[str, str] = {}
    for item in items[1:]:
        key, equals, text = item.partition("=")
        key = key.lower()
        if not equals:
            continue  # a stray word: RFC 8601 asks readers to ignore what they do not know
        if key == "reason":
            reason = text
        elif "." in key:
            properties[key] = text.lower()
    return MethodResult(method=method, result=result.lower(), reason=reason,
                        properties=properties)


def parse_authentication_results(value: str) -> AuthenticationResults | None:
    """The header field `value` as data, or None when it is too long or not RFC 8601."""
    if len(value) > MAX_LENGTH:
        return None
    try:
        segments = _segments(value)
    except _Unreadable:
        return None
    head = segments[0]
    if not head or len(head) > 2 or (len(head) == 2 and not _VERSION.match(head[1])):
        return None
    authserv_id = head[0].lower()
    rest = [segment for segment in segments[1:] if segment]
    if not rest or (len(rest) == 1 and rest[0] == ["none"]):
        return AuthenticationResults(authserv_id=authserv_id, results=())
    if len(rest) > MAX_RESULTS:
        return None
    try:
        results = tuple(_method_result(segment) for segment in rest)
    except _Unreadable:
        return None
    return AuthenticationResults(authserv_id=authserv_id, results=results)
