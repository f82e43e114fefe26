"""The quote finder reads each line's attribution once and answers as if it read it twice.

`split_body` looks for an attribution ("On ... wrote:") at every line while it finds where
an earlier message starts, and again while it sets `>` quotes apart; the second pass takes
the first's answers wherever the attribution's lines lie within what it reads.
"""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from maild.checks import quoting
from maild.checks.quoting import split_body
from maild.parse import UnparseableMail, parse_mail
from tests.conftest import CORPUS

_FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"

# Lines that start, carry or break up attributions, quotes and forwarded headers.
_LINES = st.sampled_from([
    "", "Hej!", "Det fungerar inte.", "> citerad rad", ">", "  > indragen",
    "On Mon, 16 Nov 2026 at 10:15, Anna Lind", "<anna.lind@kund.se> wrote:", "wrote:",
    "Den 16 nov. 2026 kl. 10:15 skrev Anna Lind <anna.lind@kund.se>:", "Den 16 nov 2026",
    "skrev Anna:", "Am 16.11.2026 schrieb bo@kund.se:", "-----Original Message-----",
    "Från: Anna Lind <anna.lind@kund.se>", "From: bo@kund.se", "Skickat: den 16 november",
    "Sent: Monday", "________________________________", "---------- Forwarded message",
    "Med vänlig hälsning", "Anna Lind", "-- ", "2026-11-16 anna@kund.se", "@",
])


def _read_twice(text: str) -> tuple[list[str], list[str]]:
    """The own and quoted lines as the second pass finds them asking every line again."""
    lines = quoting._normalise(text[:quoting.TEXT_LIMIT]).split("\n")
    cut = quoting._block_start(lines, {})
    own, quoted = quoting._drop_quoted_lines(lines[:cut], {})
    return own, quoted + lines[cut:]


def _read_once(text: str) -> tuple[list[str], list[str]]:
    lines = quoting._normalise(text[:quoting.TEXT_LIMIT]).split("\n")
    attributions: dict[int, int] = {}
    cut = quoting._block_start(lines, attributions)
    own, quoted = quoting._drop_quoted_lines(lines[:cut], attributions)
    return own, quoted + lines[cut:]


@settings(max_examples=3000, deadline=None)
@given(st.lists(_LINES, max_size=14))
def test_attributions_read_once_give_the_answers_read_twice(lines: list[str]) -> None:
    text = "\n".join(lines)
    assert _read_once(text) == _read_twice(text)


def test_every_corpus_body_is_split_as_when_read_twice() -> None:
    paths = [path for folder in (CORPUS, _FIXTURES) for path in sorted(folder.rglob("*.eml"))]
    compared = 0
    for path in paths:
        try:
            mail = parse_mail(path.read_bytes())
        except UnparseableMail:
            continue
        assert _read_once(mail.text) == _read_twice(mail.text), path
        split_body(mail.text)  # and the public way runs through
        compared += 1
    assert compared > 300
