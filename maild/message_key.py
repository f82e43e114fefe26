"""The identity of a raw message: its idempotency key and its Message-ID.

Kept free of database imports, so the MTA pipe (`maild deliver`) computes them
without loading SQLAlchemy. The key is a digest of the message without its
trace headers, so two deliveries of one message have the same key.
"""

from __future__ import annotations

import hashlib
import re

# Headers that relays and mailbox servers add on the way: they differ between
# two deliveries of one message, so they do not count for identity.
TRACE_HEADERS = frozenset({
    "received", "return-path", "delivered-to", "x-original-to", "envelope-to",
    "x-envelope-from", "x-envelope-to", "x-rcpt-to", "x-delivered-to", "received-spf",
    "authentication-results", "arc-authentication-results", "arc-message-signature",
    "arc-seal", "x-virus-scanned", "x-original-authentication-results", "x-maild-inbound",
})
_TRACE_PREFIXES = ("x-spam-", "x-ms-exchange-organization-", "x-forefront-")
_HEADER_END = re.compile(rb"\r?\n\r?\n")
_MESSAGE_ID = re.compile(rb"^message-id:[ \t]*(.*(?:\r?\n[ \t].*)*)", re.IGNORECASE | re.MULTILINE)


def _is_trace(name: bytes) -> bool:
    lowered = name.strip().lower().decode("latin-1")
    return lowered in TRACE_HEADERS or lowered.startswith(_TRACE_PREFIXES)


def idempotency_key(raw: bytes) -> str:
    """The SHA-256 of `raw` without trace headers, with line endings and trailing space folded."""
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


def raw_message_id(raw: bytes) -> str | None:
    """The Message-ID found in the raw header block, without brackets, or None."""
    match = _HEADER_END.search(raw)
    head = raw[:match.start()] if match else raw
    found = _MESSAGE_ID.search(head)
    if not found:
        return None
    value = re.sub(rb"\s+", b" ", found.group(1)).decode("utf-8", "replace").strip()
    value = value.strip("<>").strip() if value.count("<") <= 1 else value
    return value[:998] or None
