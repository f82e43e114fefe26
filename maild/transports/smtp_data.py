"""The content of an SMTP or LMTP DATA command, read from the stream a block at a time.

aiosmtpd reads DATA a line at a time: a 100 KB attachment is some 1,800 awaits of
`StreamReader.readuntil`, each with its bookkeeping, which cost more than storing the
message. `read_data` reads what is in the stream's buffer at once and gives, for any
stream, what aiosmtpd 1.4's loop gives:

- the content ends before the first line that is a lone dot (RFC 5321 4.5.2); lines end
  at CRLF only, and a bare LF or CR is part of a line;
- a line's leading dot is removed;
- the content is refused as too long a line, or as too much data, whichever of the two
  aiosmtpd meets first, and the rest of it is read to its end and thrown away.

Nothing past the ending dot line is read, so commands pipelined after it stay in the
stream for the session.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from enum import Enum

_DOT_LINE = b".\r\n"
_CRLF = b"\r\n"


class Refusal(Enum):
    """Why DATA's content was refused (aiosmtpd's TOO_LONG and TOO_MUCH)."""

    LINE_TOO_LONG = "line too long"
    TOO_MUCH_DATA = "too much data"


@dataclass(frozen=True)
class DataRead:
    """The content of DATA without its dot line, dots unstuffed; or why it was refused."""

    content: bytes | None
    refusal: Refusal | None


@dataclass
class _Limits:
    """Checks the content's lines as they come, in order, against both limits.

    A line of more than `line_limit` bytes before its CRLF is refused as too long before
    its bytes count towards the size, as aiosmtpd's reader refuses it. Any other line
    counts first: one that takes the content over the size is refused as too much data,
    even if, with its CRLF, it is also longer than `line_limit`.
    """

    line_limit: int
    size_limit: int | None
    lines_start: int = 0  # the content's bytes before the line being read
    line: bytes = b""  # the line being read, so far (never longer than allowed)

    def check(self, piece: bytes) -> Refusal | None:
        """Take the next piece of content; the refusal its lines meet, if any."""
        text = self.line + piece if self.line else piece
        end = text.rfind(_CRLF)
        if end < 0:
            self.line = text
            return Refusal.LINE_TOO_LONG if len(text) > self.line_limit + 1 else None
        # Lines of at most line_limit - 2 bytes, all within the size: nothing to refuse.
        within_size = self.size_limit is None or self.lines_start + end + 2 <= self.size_limit
        if within_size and _lines_at_most(text, end + 2, self.line_limit - 2):
            refusal = None
        else:
            refusal = self._first_refusal(text[:end].split(_CRLF))
        self.lines_start += end + 2
        self.line = text[end + 2:]
        if refusal is None and len(self.line) > self.line_limit + 1:
            refusal = Refusal.LINE_TOO_LONG
        return refusal

    def _first_refusal(self, lines: list[bytes]) -> Refusal | None:
        size = self.lines_start
        for line in lines:
            if len(line) > self.line_limit:
                return Refusal.LINE_TOO_LONG
            size += len(line) + 2
            if self.size_limit is not None and size > self.size_limit:
                return Refusal.TOO_MUCH_DATA
            if len(line) + 2 > self.line_limit:
                return Refusal.LINE_TOO_LONG
        return None


def _lines_at_most(text: bytes, end: int, longest: int) -> bool:
    """Whether every line of `text[:end]` (which ends with a CRLF) has at most `longest`
    bytes before its CRLF. Looks for the last CRLF within reach of each line's start, so
    that the search takes a step of about `longest` bytes, not one a line."""
    start = 0
    while start < end:
        found = text.rfind(_CRLF, start, min(start + longest + 2, end))
        if found < 0:
            return False
        start = found + 2
    return True


async def read_data(reader: asyncio.StreamReader, *, line_limit: int,
                    size_limit: int | None) -> DataRead:
    """Read DATA's content from `reader` up to and including its dot line.

    `line_limit` is aiosmtpd's `line_length_limit` (a line's bytes with its CRLF), and
    `size_limit` its `data_size_limit` (None or 0: none). A refused content is not kept
    while the rest is read. Raises what `reader` raises (`asyncio.CancelledError` when
    the connection goes away).
    """
    limits = _Limits(line_limit, size_limit or None)
    kept: list[bytes] = []
    refusal: Refusal | None = None
    before = _CRLF  # the last two bytes read: DATA's content begins at a line's start
    while True:
        try:
            chunk = await reader.readuntil(_DOT_LINE)
        except asyncio.LimitOverrunError as overrun:
            # Over the reader's limit without (or before) a dot and CRLF: take the bytes
            # before where one could begin, and look on from there.
            chunk = await reader.read(overrun.consumed)
            piece, ended = chunk, False
        else:
            dot = len(chunk) - 3
            ended = (chunk[dot - 2:dot] if dot >= 2 else (before + chunk[:dot])[-2:]) == _CRLF
            piece = chunk[:dot] if ended else chunk
        before = chunk[-2:]  # a chunk is 3 bytes at least (a dot line), or over the limit
        if refusal is None and piece:
            refusal = limits.check(piece)
            if refusal is None:
                kept.append(piece)
            else:
                kept.clear()
        if ended:
            break
    if refusal is not None:
        return DataRead(None, refusal)
    content = b"".join(kept)
    del kept
    return DataRead(_unstuffed(content), None)


def _unstuffed(content: bytes) -> bytes:
    """`content` with the leading dot of each line removed (RFC 5321 4.5.2)."""
    if _has_dot_after_crlf(content):
        content = content.replace(b"\r\n.", _CRLF)
    return content[1:] if content.startswith(b".") else content


def _has_dot_after_crlf(content: bytes, looked_at: int = 64) -> bool:
    """Whether a line of `content` after its first begins with a dot.

    The first `looked_at` dots are looked at one by one (a search for one byte is many
    times quicker than one for three, and most mail has few dots, base64 none); content
    with more is searched for CRLF and dot at once.
    """
    at = content.find(b".", 2)
    for _ in range(looked_at):
        if at < 0:
            return False
        if content[at - 2:at] == _CRLF:
            return True
        at = content.find(b".", at + 1)
    return at >= 0 and b"\r\n." in content
