"""What counts as a mail message at the door: a header block, and at most the configured size.

`maild ingest` and `maild deliver` read whatever they are given. A file with no
header block (a program, an image, a line of text) is no message: it is refused
with a reason before anything is stored, and so is a message over the size limit.
"""

from __future__ import annotations

import re

# Header fields every real message carries at least one of.
_MESSAGE_HEADERS = frozenset({
    b"from", b"sender", b"to", b"cc", b"subject", b"date", b"message-id", b"received",
    b"return-path", b"mime-version", b"content-type", b"delivered-to", b"reply-to",
    b"in-reply-to", b"references",
})
_FIELD = re.compile(rb"^([!-9;-~]+)[ \t]*:")  # RFC 5322 field name: printable ASCII but colon
_HEAD_LIMIT = 64 * 1024


def not_mail_reason(raw: bytes) -> str | None:
    """Why `raw` is not a mail message (no header block), or None when it is one."""
    head = raw[:_HEAD_LIMIT]
    if head.startswith(b"From "):  # an mbox envelope line before the headers
        head = head.split(b"\n", 1)[1] if b"\n" in head else b""
    if not head.strip():
        return "it is empty"
    if b"\x00" in head.split(b"\n\n", 1)[0].split(b"\r\n\r\n", 1)[0]:
        return "it has no header block (binary data)"
    names: set[bytes] = set()
    for line in re.split(rb"\r?\n", head):
        if not line.strip():
            break
        if line[:1] in (b" ", b"\t") and names:
            continue  # a folded continuation line
        field = _FIELD.match(line)
        if field is None:
            return "it has no header block (the first lines are not 'Name: value' header fields)"
        names.add(field.group(1).lower())
    if not names & _MESSAGE_HEADERS:
        return "it has no header block (none of From, To, Subject, Date, Message-ID, Received)"
    return None


def too_large_reason(size: int, limit: int) -> str | None:
    """Why a message of `size` bytes is refused under `limit`, or None when it fits."""
    if size <= limit:
        return None
    return (f"{_megabytes(size)} is larger than the limit of {_megabytes(limit)} "
            f"(smtp.max_message_size = {limit} bytes)")


def _megabytes(size: int) -> str:
    return f"{size / 1_048_576:.1f} MB" if size >= 104_858 else f"{size} bytes"
