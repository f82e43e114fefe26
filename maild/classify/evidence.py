"""Bounded views of a message that the machine-mail checks share: leading text, senders, prefixes.

Classification runs for every message, so no check reads more than
`TEXT_LIMIT` characters of a body, however large the message is.
"""

from __future__ import annotations

import re

from maild.parse import ParsedMail

TEXT_LIMIT = 64 * 1024
# Reply and forward markers of mail clients in many languages (as in maild.tickets.subject),
# with an optional counter such as `Re[2]:`; only the first one is looked at.
_FORWARD_MARKERS = (r"fw|fwd|vb|wg|tr|vs|vl|i|enc|rv|doorst|fvb|vidarebefordrat|videresend|"
                    r"weitergeleitet|wtrf|pd")
_REPLY_MARKERS = r"re|sv|aw|antw|rif|r|res|ynt|odp"
_COUNTER = r"\s*(?:(?:\[\d+\]|\(\d+\))\s*)?[:：]"
_FORWARD = re.compile(rf"^\s*(?:{_FORWARD_MARKERS}){_COUNTER}", re.IGNORECASE)
_REPLY_OR_FORWARD = re.compile(rf"^\s*(?:{_FORWARD_MARKERS}|{_REPLY_MARKERS}){_COUNTER}",
                               re.IGNORECASE)
_REPORT_TYPE = re.compile(r"report-type\s*=\s*\"?([\w.-]+)", re.IGNORECASE)


def leading_text(mail: ParsedMail, limit: int = TEXT_LIMIT) -> str:
    """At most the first `limit` characters of the message's readable text."""
    return mail.text[:limit]


def header_text(mail: ParsedMail, name: str) -> str:
    """The first value of header `name`, stripped and lower-cased ("" when absent)."""
    return (mail.header(name) or "").strip().lower()


def localpart(address: str) -> str:
    """The local part of `address`, lower-cased; the whole text when there is no `@`."""
    local, at, _ = address.strip().strip("<>").rpartition("@")
    return (local if at else address.strip().strip("<>")).lower()


def sender_address(mail: ParsedMail) -> str:
    """The From (else Sender) address, lower-cased, or "" when the message names none."""
    return mail.sender.address.lower() if mail.sender else ""


def is_reply_or_forward(subject: str) -> bool:
    """Whether `subject` starts with a reply or forward prefix (Re:, SV:, Fwd:, VB:, AW: ...)."""
    return _REPLY_OR_FORWARD.match(subject) is not None


def is_forward(subject: str) -> bool:
    """Whether `subject` starts with a forward prefix (Fwd:, FW:, VB:, WG: ...)."""
    return _FORWARD.match(subject) is not None


def report_type(mail: ParsedMail) -> str | None:
    """The report-type of a multipart/report message ("" when unnamed), else None.

    The Content-Type header is read as well as the parsed type, so a report whose
    MIME structure is broken (no boundary, say) is still seen as one.
    """
    content_type = mail.header("Content-Type") or ""
    media_type = content_type.split(";", 1)[0].strip().lower()
    if "multipart/report" not in (mail.content_type, media_type):
        return None
    match = _REPORT_TYPE.search(content_type)
    return match.group(1).lower() if match else ""
