"""The identity of a raw message: its idempotency key and its Message-ID.

Kept free of database imports, so the MTA pipe (`maild deliver`) computes them
without loading SQLAlchemy. The key is a digest of the message without its
trace headers, so two deliveries of one message have the same key.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hashlib import _Hash

# Headers that relays and mailbox servers add on the way: they differ between
# two deliveries of one message, so they do not count for identity.
TRACE_HEADERS = frozenset({
    "received", "return-path", "delivered-to", "x-original-to", "envelope-to",
    "x-envelope-from", "x-envelope-to", "x-rcpt-to", "x-delivered-to", "received-spf",
    "authentication-results", "arc-authentication-results", "arc-message-signature",
    "arc-seal", "x-virus-scanned", "x-original-authentication-results", "x-maild-inbound",
})
_TRACE_PREFIXES = ("x-spam-", "x-ms-exchange-organization-", "x-forefront-")
# How much of a message is read at a time to compute its key.
BLOCK_SIZE = 64 * 1024
# How far the end of the header block is first looked for (most header blocks are shorter).
HEAD_WINDOW = 4096
_MESSAGE_ID = re.compile(rb"^message-id:[ \t]*(.*(?:\r?\n[ \t].*)*)", re.IGNORECASE | re.MULTILINE)


# Where a line may begin a trace header: every line whose name (stripped, lowercased) is
# one, and some that only begin like one, which `_is_trace` then tells apart. Matched in
# the lowercased header block: the first line at its start, the others after their LF,
# which the search jumps to (a pattern that begins at any line's start is tried at every
# byte).
_TRACE_NAME = rb"[ \t\r\x0b\x0c]*(?:" + b"|".join(
    re.escape(name.encode()) for name in sorted({*TRACE_HEADERS, *_TRACE_PREFIXES})) + rb")"
_TRACE_FIRST_LINE = re.compile(_TRACE_NAME)
_TRACE_LINE_AFTER_LF = re.compile(rb"\n" + _TRACE_NAME)


def _is_trace(name: bytes) -> bool:
    lowered = name.strip().lower().decode("latin-1")
    return lowered in TRACE_HEADERS or lowered.startswith(_TRACE_PREFIXES)


def idempotency_key(raw: bytes, *, block_size: int = BLOCK_SIZE) -> str:
    """The SHA-256 of `raw` without trace headers, with line endings and trailing space folded.

    The header lines that are kept are joined by LF; then come LF LF and the body with
    every line's trailing whitespace cut, lines joined by LF and trailing empty lines
    dropped. The body is read `block_size` bytes at a time, so no copy of the whole
    message is made; the digest is the same as folding the whole body at once.
    """
    head_end, body_start = _header_end(raw)
    digest = hashlib.sha256()
    _fold_head(digest, raw, head_end, block_size)
    digest.update(b"\n\n")
    if body_start is not None:
        _fold_body(digest, raw, body_start, block_size)
    return digest.hexdigest()


def _header_end(raw: bytes, window: int = HEAD_WINDOW) -> tuple[int, int | None]:
    """Where the header block ends and the body begins: the first empty line, which is
    the first LF followed by LF or CRLF (with the CR before that LF, if any, in neither).
    Without an empty line, the whole message is header block and there is no body.

    Both are looked for in the first `window` bytes, then in eight times as many, and so
    on: most messages have one kind of line end throughout, and the search for a blank
    line of the other kind would otherwise read all of it.
    """
    while True:
        limit = min(window, len(raw))
        blank = raw.find(b"\n\n", 0, limit)
        crlf_blank = raw.find(b"\n\r\n", 0, limit if blank < 0 else blank + 2)  # before it
        if crlf_blank >= 0:
            newline, body_start = crlf_blank, crlf_blank + 3
            break
        if blank >= 0:
            newline, body_start = blank, blank + 2
            break
        if limit == len(raw):
            return len(raw), None
        window *= 8
    return (newline - 1 if newline and raw[newline - 1] == 0x0D else newline), body_start


def _fold_head(digest: _Hash, raw: bytes, end: int, block_size: int) -> None:
    """Digest the lines of `raw[:end]` (split at CRLF or LF) that are not of a trace header.

    The header block is read in blocks of whole headers (a block ends at the first line
    break after `block_size` bytes that no continuation line follows), so a header
    block of any size is never copied whole. In a block, trace headers are cut out as
    slices: only the lines that `_trace_line_starts` finds are read one by one.
    """
    first = True
    start = 0
    while True:
        stop = _head_block_end(raw, start, end, block_size)
        cut = stop - 1 if stop < end and stop > start and raw[stop - 1] == 0x0D else stop
        for run in _kept_runs(raw[start:cut].replace(b"\r\n", b"\n")):
            digest.update(run if first else b"\n" + run)
            first = False
        if stop >= end:
            return
        start = stop + 1


def _head_block_end(raw: bytes, start: int, end: int, block_size: int) -> int:
    """Where the block of whole headers from `start` ends: the LF after which a header
    begins, `block_size` bytes on at least, or `end`."""
    if end - start <= block_size:
        return end
    at = raw.find(b"\n", start + block_size - 1, end)
    while 0 <= at < end - 1 and raw[at + 1] in (0x20, 0x09):  # a continuation line follows
        at = raw.find(b"\n", at + 1, end)
    return end if at < 0 else at


def _kept_runs(head: bytes) -> list[bytes]:
    """The runs of lines of `head` (split at LF) left when trace headers are cut out, each
    without its last LF: joined by LF, they are the kept lines joined by LF."""
    kept: list[bytes] = []
    kept_from = 0
    for start in _trace_line_starts(head):
        if start < kept_from:  # a line of a trace header already cut
            continue
        line_end = head.find(b"\n", start)
        if line_end < 0:
            line_end = len(head)
        line = head[start:line_end]
        if line[:1] in (b" ", b"\t") or not _is_trace(line.split(b":", 1)[0]):
            continue  # a continuation line, or a header whose name only begins like one
        while head[line_end + 1:line_end + 2] in (b" ", b"\t"):  # its continuation lines
            line_end = head.find(b"\n", line_end + 1)
            if line_end < 0:
                line_end = len(head)
        if start > kept_from:
            kept.append(head[kept_from:start - 1])
        kept_from = line_end + 1
    if kept_from <= len(head):
        kept.append(head[kept_from:])
    return kept


def _trace_line_starts(head: bytes) -> Iterator[int]:
    """Where the lines of `head` (split at LF) begin that may begin a trace header, in order."""
    lowered = head.lower()  # ASCII only: every offset stays where it was
    if _TRACE_FIRST_LINE.match(lowered):
        yield 0
    for found in _TRACE_LINE_AFTER_LF.finditer(lowered):
        yield found.start() + 1


def _fold_body(digest: _Hash, raw: bytes, start: int, block_size: int) -> None:
    """Digest `raw[start:]` with each line's trailing whitespace cut, and the body's.

    Cutting the body's trailing whitespace first drops its trailing empty lines, as
    cutting it from the folded text would. Blocks end after their last LF, so a line
    is never folded in two pieces; a line longer than a block is digested from `raw`.
    """
    end = _end_of_text(raw, start, len(raw), block_size)
    view = memoryview(raw)
    position = start
    while position < end:
        limit = min(position + block_size, end)
        newline = raw.rfind(b"\n", position, limit)
        if newline >= 0:
            block = raw[position:newline + 1]
            digest.update(b"\n".join([line.rstrip() for line in block.split(b"\n")]))
            position = newline + 1
            continue
        newline = raw.find(b"\n", limit, end)
        stop = end if newline < 0 else newline
        digest.update(view[position:_end_of_text(raw, position, stop, block_size)])
        if newline < 0:
            return
        digest.update(b"\n")
        position = newline + 1


def _end_of_text(raw: bytes, start: int, end: int, block_size: int) -> int:
    """Where `raw[start:end].rstrip()` would end in `raw`, looked for a block at a time."""
    while end > start:
        low = max(start, end - block_size)
        kept = len(raw[low:end].rstrip())
        if kept:
            return low + kept
        end = low
    return start


def _message_id_header(raw: bytes, end: int) -> re.Match[bytes] | None:
    """`_MESSAGE_ID`'s first match in `raw[:end]`, found by looking at the lines that begin
    with an M first: a search for a pattern that ignores case tries it at every byte."""
    at = 0  # the start of a line that may be the Message-ID's
    while True:
        if at + 11 <= end and raw[at:at + 11].lower() == b"message-id:":
            return _MESSAGE_ID.match(raw, at, end)
        lower, upper = raw.find(b"\nm", at, end), raw.find(b"\nM", at, end)
        if lower < 0 and upper < 0:
            return None
        at = (upper if lower < 0 else lower if upper < 0 else min(lower, upper)) + 1


def raw_message_id(raw: bytes) -> str | None:
    """The Message-ID found in the raw header block, without brackets, or None."""
    head_end, _ = _header_end(raw)
    found = _message_id_header(raw, head_end)
    if not found:
        return None
    value = re.sub(rb"\s+", b" ", found.group(1)).decode("utf-8", "replace").strip()
    value = value.strip("<>").strip() if value.count("<") <= 1 else value
    return value[:998] or None
