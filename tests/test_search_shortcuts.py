"""Searches skipped where they cannot match give the answers of the full search.

Header values, evidence and a body's words are read on every message, so each of these
leaves out a regex substitution when the text cannot hold what it replaces; the
reference beside each test is the function without that shortcut.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from maild import parse
from maild.checks import description, result

# Ordinary text, with the characters each substitution is about mixed in: line breaks,
# tabs, control characters, non-ASCII spaces, runs of spaces, addresses and links.
PIECES = st.sampled_from([
    "Hej", "kassan", "visar", "fel", " ", "  ", "\t", "\r\n", "\n ", "\x00", "\x1f", "\x7f",
    "\xa0", "\u2028", "\u3000", "\x85", "anna@bergstromsbygg.se", "@", "HTTP://x.se/a",
    "https://", "www.", "WWW.example.se", "Www", "é", "ſ", "’", "-", "'", ".", "2026"])
TEXTS = st.lists(PIECES, max_size=12).map("".join)


@settings(max_examples=2000)
@given(TEXTS)
def test_a_header_value_is_cleaned_as_by_both_substitutions(text: str) -> None:
    reference = parse._CONTROL.sub("", parse._FOLDING.sub(" ", text)).strip()
    assert parse._clean(text) == reference[:parse._MAX_HEADER_VALUE]


@settings(max_examples=2000)
@given(TEXTS)
def test_evidence_is_clipped_as_with_every_space_run_replaced(text: str) -> None:
    assert result.clip(text) == result.clip(result._SPACE.sub(" ", text) + "  ")


@settings(max_examples=2000)
@given(TEXTS)
def test_content_words_are_those_left_with_every_address_taken_out(text: str) -> None:
    lowered = description._ADDRESS.sub(" ", text.lower()).replace("’", "'")
    reference = [word for word in description._WORD.findall(lowered)
                 if len(word) > 1 and word not in description._NOT_CONTENT]
    assert description.content_words(text) == reference
