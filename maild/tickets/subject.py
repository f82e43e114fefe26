"""Subjects: reply and forward prefixes in many languages, and maild's ticket tags."""

from __future__ import annotations

import re

from maild.tickets.numbering import TicketNumbering

# Re/Fwd markers as mail clients write them: English, Swedish (SV, VB,
# Vidarebefordrat), German (AW, WG), Danish/Norwegian (VS, VB, SV), Finnish
# (VL, VS), Dutch (Antw, Doorst), Italian (R, RIF, I), Spanish/Portuguese (RE,
# RV, ENC), Turkish, Polish, with an optional counter such as `Re[2]:`.
_MARKERS = (
    r"re|sv|aw|vs|vb|fw|fwd|fvb|vl|wg|tr|antw|rif|r|rv|res|enc|ynt|odp|doorst|i|"
    r"vidarebefordrat|videresend|weitergeleitet|wtrf|pd"
)
_PREFIX = re.compile(rf"^\s*(?:{_MARKERS})\s*(?:\[\d+\]|\(\d+\))?\s*[:：]\s*", re.IGNORECASE)


def strip_prefixes(subject: str, numbering: TicketNumbering | None = None) -> str:
    """`subject` without any stack of Re:/SV:/Fwd:-style prefixes and without maild's tags."""
    text = " ".join(subject.split())
    tag = tag_pattern(numbering) if numbering else None
    while True:
        before = text
        text = _PREFIX.sub("", text)
        if tag is not None:
            text = tag.sub("", text, count=1).strip() if tag.match(text.lstrip()) else text
        if text == before:
            return text.strip()


def tagged_subject(number: str, subject: str, numbering: TicketNumbering) -> str:
    """`[NUMBER] subject` with reply prefixes and older tags removed, never stacked."""
    clean = strip_prefixes(subject, numbering)
    if tag_pattern(numbering).search(clean):
        clean = tag_pattern(numbering).sub("", clean).strip()
    return f"[{number}] {clean}".strip() if clean else f"[{number}]"


def tag_pattern(numbering: TicketNumbering) -> re.Pattern[str]:
    """The bracketed form `[NUMBER]` of a ticket tag."""
    return re.compile(rf"\[\s*{numbering.pattern.pattern}\s*\]", re.IGNORECASE)
