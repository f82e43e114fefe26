"""The idempotency key and Message-ID of a raw message: the same as ever, for every input.

Keys are stored with every message: a key that changed across an upgrade would let a
redelivered message be stored twice. So the key, computed a block at a time, is
compared with the whole-message computation it replaced (kept here as it was) on
hostile inputs, with blocks small enough that every boundary case is hit.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from maild.message_key import (
    _MESSAGE_ID,
    _header_end,
    _is_trace,
    idempotency_key,
    raw_message_id,
)

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "emails"
# Where the header block ends, as the key was first written to find it.
_HEADER_END = re.compile(rb"\r?\n\r?\n")


def whole_message_key(raw: bytes) -> str:
    """The key as computed before it was read in blocks (a copy of that code)."""
    match = _HEADER_END.search(raw)
    head, body = (raw[:match.start()], raw[match.end():]) if match else (raw, b"")
    kept: list[bytes] = []
    skipping = False
    for line in re.split(rb"\r?\n", head):
        if line[:1] in (b" ", b"\t"):
            if not skipping:
                kept.append(line)
            continue
        name = line.split(b":", 1)[0]
        skipping = _is_trace(name)
        if not skipping:
            kept.append(line)
    normalized_body = b"\n".join(line.rstrip() for line in re.split(rb"\r?\n", body)).rstrip()
    digest = hashlib.sha256()
    digest.update(b"\n".join(kept))
    digest.update(b"\n\n")
    digest.update(normalized_body)
    return digest.hexdigest()


def whole_head_message_id(raw: bytes) -> str | None:
    """The Message-ID as found before, in a copy of the header block (a copy of that code)."""
    match = _HEADER_END.search(raw)
    head = raw[:match.start()] if match else raw
    found = _MESSAGE_ID.search(head)
    if not found:
        return None
    value = re.sub(rb"\s+", b" ", found.group(1)).decode("utf-8", "replace").strip()
    value = value.strip("<>").strip() if value.count("<") <= 1 else value
    return value[:998] or None


# Pieces that meet at block boundaries in every way that matters: line endings and their
# halves, every byte that rstrip() cuts, runs of them, header names that are and are not
# trace headers, continuation lines, and bytes that are not whitespace to rstrip() alone.
PIECES = [b"\r", b"\n", b"\r\n", b"\n\n", b"\r\n\r\n", b" ", b"\t", b"\x0b", b"\x0c",
          b"   \t ", b"\x1c", b"\x85", b"\xa0", b"\x00", b"a", b"xyz", b":", b"=", b"<",
          b"Received: from relay", b"received", b"X-Spam-Score: 5", b"x-ms-exchange-organization-a",
          b"Subject: hej", b"Message-ID: <m1@x>", b"message-id:\r\n\t<m2@y>", b" folded",
          b"\tfolded", b"From: a@b",
          # names that begin like a trace header's and are not, and trace headers after
          # whitespace that is not a continuation's, in any case
          b"Received-Foo: no", b"X-SPAM", b"x-spam-", b"ARC-Seal: i=1", b"\x0bReceived: x",
          b"\rreturn-path: <a@b>", b"\x0c DELIVERED-TO: c", b"Envelope-To", b"x-envelope-fromage",
          # lines that begin with an M, as a Message-ID's does, and are not one
          b"mime-version: 1.0", b"MIME-Version: 1.0", b"message-ids: <m4@z>", b"Message-Id: <m5@z>"]
messages = st.one_of(
    st.lists(st.sampled_from(PIECES), max_size=60).map(b"".join),
    st.binary(max_size=200),
    st.text(alphabet=" \t\r\n\x0b\x0cab:", max_size=120).map(str.encode),
)


@settings(max_examples=3000, deadline=None)
@given(raw=messages, block_size=st.integers(min_value=1, max_value=12))
def test_the_key_read_in_blocks_is_the_key_of_the_whole_message(raw: bytes,
                                                                 block_size: int) -> None:
    assert idempotency_key(raw, block_size=block_size) == whole_message_key(raw)


@settings(max_examples=3000, deadline=None)
@given(raw=messages)
def test_the_header_block_ends_where_the_first_pattern_found_its_end(raw: bytes) -> None:
    match = _HEADER_END.search(raw)
    expected = (match.start(), match.end()) if match else (len(raw), None)
    for window in (1, 2, 3, 4, 5, 7, 4096):  # searched first in `window` bytes, then more
        assert _header_end(raw, window) == expected, window


@settings(max_examples=3000, deadline=None)
@given(raw=messages)
def test_the_message_id_is_found_as_in_a_copy_of_the_header_block(raw: bytes) -> None:
    assert raw_message_id(raw) == whole_head_message_id(raw)


def test_edge_cases_of_the_key() -> None:
    """Inputs written out, so that each case is run every time, whatever hypothesis draws."""
    long_line = b"x" * 50 + b" \t" * 40 + b"y" + b" " * 30
    cases = [
        b"", b"\n", b"\r\n", b"\r\n\r\n", b"\n\n\n", b"Subject: s",  # no separator
        b"Subject: s\n", b"Subject: s\r\r\n\nbody", b"A: b\r\n\r\n \t\r\n\r\n",
        b"A: b\n\nline \r\n\r\n\t\r\nlast \t\x0b\x0c\r\n  \r\n",
        b"Received: x\r\n  folded\r\nSubject: s\r\n\r\nbody",
        b"A: b\r\n\r\n" + long_line + b"\r\n" + long_line,
        b"A: b\r\n\r\n" + b" " * 100 + b"z",  # a run of spaces over many blocks, then text
        b"A: b\r\n\r\n" + b"\r" * 100 + b"\n" + b"\r" * 10,
    ]
    for raw in cases:
        for block_size in (1, 2, 3, 5, 64, 65_536):
            assert idempotency_key(raw, block_size=block_size) == whole_message_key(raw), (
                raw, block_size)


def test_the_key_of_a_fixture_is_the_one_stored_before() -> None:
    """A fixed digest: what databases hold for this message must not change."""
    raw = (FIXTURE / "21-sv-bergstroms-bokning-igen.eml").read_bytes()
    assert idempotency_key(raw) == (
        "cfea57084da31ed18899e9c918dbf843b6f49016e0ee27abba3ed94d73ef1f89")
    head, _, body = raw.partition(b"\r\n\r\n")
    redelivered = (b"Received: from mx1.example.se\r\n\tby mx2; Mon, 16 Nov 2026\r\n"
                   + head.replace(b"\r\n", b"\n") + b"\n\n"
                   + body.replace(b"\r\n", b" \t\n") + b"\n \n\n")
    for block_size in (7, 64, 65_536):
        assert idempotency_key(redelivered, block_size=block_size) == idempotency_key(raw)
