"""Ticket numbers, tags in subjects, and reply prefixes in many languages."""

from __future__ import annotations

import pytest

from maild.tickets.numbering import TicketNumbering, luhn_digit
from maild.tickets.subject import strip_prefixes, tagged_subject

NUMBERING = TicketNumbering("MD")


def test_number_format_and_check_digit() -> None:
    number = NUMBERING.format(2026, 42)
    assert number.startswith("MD-2026-00042-")
    assert NUMBERING.is_valid(number)
    assert luhn_digit("202600042") == int(number[-1])


@pytest.mark.parametrize("typo", ["MD-2026-00043-{c}", "MD-2027-00042-{c}", "MD-2026-00024-{c}"])
def test_a_typo_fails_the_check_digit(typo: str) -> None:
    check = NUMBERING.format(2026, 42)[-1]
    assert not NUMBERING.is_valid(typo.format(c=check))


def test_find_only_returns_valid_tags() -> None:
    real = NUMBERING.format(2026, 7)
    fake = real[:-1] + str((int(real[-1]) + 1) % 10)
    text = f"SV: [{real}] Order MD-2026-12345 och {fake} och XMD-2026-00007-0"
    assert NUMBERING.find(text) == [real]
    assert NUMBERING.find(real.lower()) == [real]


@pytest.mark.parametrize(("subject", "clean"), [
    ("SV: Sv: RE: AW: Inloggningen fungerar inte", "Inloggningen fungerar inte"),
    ("VB: Fwd: FW: Faktura", "Faktura"),
    ("Re[2]: VS: Vidarebefordrat: Kampanj 48213", "Kampanj 48213"),
    ("Svar: angående avtal", "Svar: angående avtal"),
    ("Reklamation av leverans", "Reklamation av leverans"),
    ("", ""),
])
def test_reply_prefixes_are_stripped(subject: str, clean: str) -> None:
    assert strip_prefixes(subject) == clean


def test_tagged_subject_never_stacks() -> None:
    number = NUMBERING.format(2026, 5)
    once = tagged_subject(number, "Sidan är nere", NUMBERING)
    assert once == f"[{number}] Sidan är nere"
    assert tagged_subject(number, f"SV: RE: {once}", NUMBERING) == once
    assert tagged_subject(number, "", NUMBERING) == f"[{number}]"
