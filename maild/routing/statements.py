"""Find a policy's priority phrases in a customer's words, as the customer meant them.

A phrase counts only as whole words: "kritisk" is not found in "icke-kritisk"
or "okritisk", "urgent" not in "non-urgent". A phrase with a negation among
the three words before it in the same clause does not count either: "inte
brådskande", "not urgent", "ej kritiskt läge". Where a phrase of one level
lies inside a longer phrase of another level ("affärsverksamheten avsevärt
försvåras" inside "viss del av affärsverksamheten avsevärt försvåras"), the
longer, more exact phrase is the one that counts.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache

# Words that turn the statement after them around, Swedish and English.
NEGATIONS = frozenset({
    "inte", "ej", "icke", "ingen", "inget", "inga", "aldrig", "utan", "knappast",
    "not", "no", "non", "never", "without", "hardly", "isn't", "isnt", "aren't", "arent",
    "wasn't", "wasnt", "weren't", "werent", "don't", "dont", "doesn't", "doesnt", "didn't",
    "didnt", "nothing",
})
_WINDOW = 3  # words before a phrase in which a negation turns it around
# Where a clause ends: punctuation, a dash between words, or a joining word.
_CLAUSE_END = re.compile(r"[.!?;:,()\[\]\n]|\s[-–—]\s|\b(?:och|men|eller|and|but|or)\b",
                         re.IGNORECASE)
_WORD = re.compile(r"[\w'’]+")


@dataclass(frozen=True)
class Hit:
    """One phrase of `level` found in the text at [start, end)."""

    level: str
    phrase: str
    found: str
    start: int
    end: int
    negated: bool


@lru_cache(maxsize=4096)
def phrase_pattern(phrase: str) -> re.Pattern[str]:
    """`phrase` as whole words, any run of white space between them, case-insensitive.

    A hyphen glued to a word joins it to the phrase ("icke-kritisk" is one word),
    so neither side of a phrase may touch a word or a word-joining hyphen.
    """
    words = r"\s+".join(re.escape(part) for part in phrase.split())
    return re.compile(rf"(?<![\w])(?<!\w-){words}(?![\w])(?!-\w)", re.IGNORECASE)


def negated_before(text: str, start: int) -> bool:
    """Whether a negation stands among the last few words of the clause before `start`."""
    before = text[max(0, start - 200):start]
    ends = list(_CLAUSE_END.finditer(before))
    clause = before[ends[-1].end():] if ends else before
    words = [word.casefold().replace("’", "'") for word in _WORD.findall(clause)]
    return any(word in NEGATIONS for word in words[-_WINDOW:])


@lru_cache(maxsize=4096)
def _folded_words(phrase: str) -> tuple[str, ...]:
    return tuple(phrase.casefold().split())


def _may_occur(phrase: str, folded_text: str, seen: dict[str, bool]) -> bool:
    """False when a word of `phrase` is nowhere in the case-folded text: no regex needed.

    Full case folding makes at least as many letters equal as the pattern's
    case-insensitive matching does, so this never rules out a real occurrence.
    `seen` remembers each word's answer for this text: phrases share their words,
    and each look is a scan of the whole text.
    """
    for word in _folded_words(phrase):
        found = seen.get(word)
        if found is None:
            found = seen[word] = word in folded_text
        if not found:
            return False
    return True


def find_phrases(text: str, phrases: Mapping[str, Iterable[str]]) -> list[Hit]:
    """Every occurrence of each level's phrases in `text`, in text order.

    Hits inside a longer hit of another level are left out; negated hits are
    kept (marked) so that the caller can say what it did not count.
    """
    hits: list[Hit] = []
    folded = text.casefold()
    seen: dict[str, bool] = {}
    for level, level_phrases in phrases.items():
        for phrase in level_phrases:
            if not phrase.strip() or not _may_occur(phrase, folded, seen):
                continue
            for match in phrase_pattern(phrase).finditer(text):
                hits.append(Hit(level=level, phrase=phrase, found=match.group(0),
                                start=match.start(), end=match.end(),
                                negated=negated_before(text, match.start())))
    kept = [hit for hit in hits if not any(
        other.level != hit.level and not other.negated
        and other.start <= hit.start and hit.end <= other.end
        and (other.end - other.start) > (hit.end - hit.start)
        for other in hits)]
    return sorted(kept, key=lambda hit: (hit.start, -hit.end))
