"""Sentences of a text: paragraphs joined across line wraps, split at sentence ends.

A full stop after an abbreviation ("kl.", "ca.", "t.ex.", "nov.", "e.g.") does
not end a sentence, so "16/11 kl. 10" and "17 nov. 2026" stay whole. A line
that reads as a field of a form ("webbläsare: Chrome 120") is a sentence of
its own.
"""

from __future__ import annotations

import re

_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")
_FIELD_LINE = re.compile(r"^\s*[^\W\d_][\w ./-]{0,30}:\s+\S")
_ABBREVIATIONS = frozenset({
    "kl", "ca", "t.ex", "tex", "bl.a", "bla", "nr", "no", "tel", "e.g", "i.e", "etc", "approx",
    "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "okt", "oct", "nov", "dec",
    "mon", "tue", "wed", "thu", "fri", "sat", "sun", "mån", "tis", "ons", "tors", "fre", "lör",
    "sön", "resp", "inkl", "exkl", "st", "vs", "fr.o.m", "t.o.m", "dvs", "mr", "mrs", "dr",
})
_END = re.compile(r"(?<=[.!?])\s+")


def split_sentences(text: str) -> list[str]:
    """The sentences of `text`, each on one line, in order."""
    sentences: list[str] = []
    for paragraph in _PARAGRAPH_BREAK.split(text):
        for chunk in _lines_to_chunks(paragraph.split("\n")):
            sentences.extend(_split_chunk(chunk))
    return [sentence for sentence in sentences if sentence]


def _lines_to_chunks(lines: list[str]) -> list[str]:
    """Wrapped lines joined; form-field lines ("os: Windows 11") kept apart."""
    chunks: list[str] = []
    current: list[str] = []
    for line in lines:
        stripped = line.strip()
        if not stripped:
            continue
        if _FIELD_LINE.match(stripped):
            if current:
                chunks.append(" ".join(current))
                current = []
            chunks.append(stripped)
            continue
        current.append(stripped)
    if current:
        chunks.append(" ".join(current))
    return chunks


def _split_chunk(chunk: str) -> list[str]:
    pieces: list[str] = []
    start = 0
    for match in _END.finditer(chunk):
        before = chunk[start:match.start()]
        last = before[before.rfind(" ") + 1:]
        if last.endswith(".") and last[:-1].lower().lstrip("(") in _ABBREVIATIONS:
            continue
        pieces.append(before.strip())
        start = match.end()
    pieces.append(chunk[start:].strip())
    return pieces
