"""A guess at whether a message is written in Swedish or English."""

from __future__ import annotations

import re

_SWEDISH = frozenset((
    "och", "att", "det", "är", "inte", "jag", "vi", "ni", "har", "med", "för", "på", "som",
    "till", "kan", "vill", "kommer", "hej", "tack", "hälsningar", "vänliga", "mvh", "fungerar",
    "går", "problem", "ärende", "sidan", "när", "efter", "också", "eller", "men", "bara",
    "skulle", "måste", "någon", "något", "igår", "idag",
))
_ENGLISH = frozenset((
    "the", "and", "is", "are", "not", "we", "you", "have", "with", "for", "on", "that", "to",
    "can", "will", "would", "hello", "hi", "thanks", "regards", "best", "please", "working",
    "problem", "issue", "page", "when", "after", "also", "or", "but", "only", "should", "must",
    "some", "yesterday", "today",
))
_WORD = re.compile(r"[a-zåäöé]+")


def guess_language(text: str) -> str | None:
    """"sv" or "en" when the words say so clearly, else None."""
    words = _WORD.findall(text.lower()[:4000])
    swedish = sum(word in _SWEDISH for word in words) + 2 * sum(
        ch in "åäö" for ch in text[:4000].lower()) / 10
    english = sum(word in _ENGLISH for word in words)
    if swedish == english == 0:
        return None
    if swedish >= english * 1.2 and swedish >= 2:
        return "sv"
    if english >= swedish * 1.2 and english >= 2:
        return "en"
    return None
