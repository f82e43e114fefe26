"""What a detector says about one required item: present or not, and the evidence it found."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from maild.checks.quoting import BodyParts
from maild.parse import ParsedMail

EVIDENCE_LIMIT = 80
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class ItemResult:
    """One required item of a support case, whether the message has it, and the evidence."""

    item: str             # e.g. "browser"
    present: bool
    evidence: str | None  # the matched text (at most ~80 characters) or the attachment


Detector = Callable[[ParsedMail, BodyParts], ItemResult]


def clip(text: str, limit: int = EVIDENCE_LIMIT) -> str:
    """`text` on one line, at most `limit` characters (cut at a word, with an ellipsis)."""
    if not text.isprintable() or "  " in text:  # a printable text has no space but " "
        text = _SPACE.sub(" ", text)
    text = text.strip()
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    if " " in cut[limit // 2:]:
        cut = cut.rsplit(" ", 1)[0]
    return cut.rstrip(" ,;:-–") + "…"


def found(item: str, evidence: str) -> ItemResult:
    """The item is present; `evidence` is clipped to one short line."""
    return ItemResult(item, True, clip(evidence))


def missing(item: str) -> ItemResult:
    """The item is not in the message."""
    return ItemResult(item, False, None)
