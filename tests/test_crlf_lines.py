"""`crlf_lines` makes every line ending CRLF, whatever the endings it is given.

The reference below is the plain definition (split at CRLF, CR or LF; join with
CRLF; end with one); the function takes shortcuts for CRLF-only and LF-only mail.
"""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from maild.respond.wire import crlf_lines


def reference(raw: bytes) -> bytes:
    lines = re.split(rb"\r\n|\r|\n", raw)
    if lines and lines[-1] == b"":
        lines.pop()
    return b"".join(line + b"\r\n" for line in lines)


@settings(max_examples=3000)
@given(st.lists(st.sampled_from([b"a", b"\xff", b" ", b"\r", b"\n", b"\r\n", b"\n\r"]),
                max_size=30).map(b"".join))
def test_every_line_ending_becomes_crlf_as_the_plain_definition_says(raw: bytes) -> None:
    assert crlf_lines(raw) == reference(raw)


def test_written_out_cases() -> None:
    assert crlf_lines(b"") == b""
    assert crlf_lines(b"a") == b"a\r\n"
    assert crlf_lines(b"a\nb") == b"a\r\nb\r\n"
    assert crlf_lines(b"a\n\n") == b"a\r\n\r\n"
    assert crlf_lines(b"a\rb\r\n") == b"a\r\nb\r\n"
    assert crlf_lines(b"\n\r") == b"\r\n\r\n"


def test_mail_that_has_crlf_endings_is_not_copied() -> None:
    raw = b"Subject: x\r\n\r\nbody\r\n"
    assert crlf_lines(raw) is raw
