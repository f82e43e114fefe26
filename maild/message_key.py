"""The identity of a raw message: its idempotency key and its Message-ID.

Kept free of database imports, so the MTA pipe (`maild deliver`) computes them
without loading SQLAlchemy. The key is a digest of the message without its
trace headers, so two deliveries of one message have the same key.
"""

from __future__ import annotations

import hashlib
import re
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
_HEADER_END = re.compile(rb"\r?\n\r?\n")
_MESSAGE_ID = re.compile(rb"^message-id:[ \t]*(.*(?:\r?\n[ \t].*)*)", re.IGNORECASE | re.MULTILINE)


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
    match = _HEADER_END.search(raw)
    digest = hashlib.sha256()
    _fold_head(digest, raw, match.start() if match else len(raw))
    digest.update(b"\n\n")
    if match:
        _fold_body(digest, raw, match.end(), block_size)
    return digest.hexdigest()


def _fold_head(digest: _Hash, raw: bytes, end: int) -> None:
    """Digest the lines of `raw[:end]` (split at CRLF or LF) that are not of a trace header."""
    skipping = False
    first = True
    start = 0
    while start <= end:
        newline = raw.find(b"\n", start, end)
        stop = end if newline < 0 else newline
        cut = stop - 1 if newline >= 0 and stop > start and raw[stop - 1] == 0x0D else stop
        line = raw[start:cut]
        if line[:1] not in (b" ", b"\t"):
            skipping = _is_trace(line.split(b":", 1)[0])
        if not skipping:
            digest.update(line if first else b"\n" + line)
            first = False
        if newline < 0:
            return
        start = newline + 1


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


def raw_message_id(raw: bytes) -> str | None:
    """The Message-ID found in the raw header block, without brackets, or None."""
    match = _HEADER_END.search(raw)
    found = _MESSAGE_ID.search(raw, 0, match.start() if match else len(raw))
    if not found:
        return None
    value = re.sub(rb"\s+", b" ", found.group(1)).decode("utf-8", "replace").strip()
    value = value.strip("<>").strip() if value.count("<") <= 1 else value
    return value[:998] or None
