"""The durable boundary: raw bytes committed before any source is told "stored".

The same message delivered again (an SMTP retry, an IMAP re-fetch, the same
mail to two support addresses) has the same idempotency key and is recorded
once. The key is a digest of the message without its trace headers, so two
different messages that share a Message-ID are both kept, and a message
without one is still recognised by its content.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError
from sqlmodel import Session, col

from maild.db import StorageError
from maild.log import get_logger
from maild.models import Inbound, InboundState, utcnow

log = get_logger("maild.intake")

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


@dataclass(frozen=True)
class Stored:
    """The outcome of storing: the inbound id, and whether it was already there."""

    inbound_id: int
    duplicate: bool


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


def _clip(text: str | None, length: int) -> str | None:
    return text[:length] if text is not None else None


def store_inbound(
    engine: Engine,
    raw: bytes,
    *,
    transport: str,
    envelope_sender: str | None = None,
    recipients: Sequence[str] = (),
    source: str | None = None,
    received_at: datetime | None = None,
) -> Stored:
    """Commit `raw` with its envelope, or find the earlier copy; raises `StorageError` on failure.

    Only after this returns may the source be told the message is stored.
    """
    key = idempotency_key(raw)
    recipients = [r.strip().lower() for r in recipients if r.strip()]
    try:
        with Session(engine) as session:
            existing = session.scalars(select(Inbound).where(
                col(Inbound.idempotency_key) == key)).first()
            if existing is not None:
                return _record_duplicate(session, existing, recipients)
            row = Inbound(
                received_at=received_at or utcnow(),
                transport=transport,
                source=source,
                envelope_sender=_clip(envelope_sender, 512),
                envelope_recipients=recipients,
                raw=raw,
                size=len(raw),
                idempotency_key=key,
                message_id=raw_message_id(raw),
                state=InboundState.RECEIVED,
            )
            session.add(row)
            try:
                session.commit()
            except IntegrityError:
                # Another process stored the same message a moment ago.
                session.rollback()
                existing = session.scalars(select(Inbound).where(
                    col(Inbound.idempotency_key) == key)).one()
                return _record_duplicate(session, existing, recipients)
            assert row.id is not None
            log.info("inbound.stored", inbound_id=row.id, message_id=row.message_id,
                     transport=transport, size=len(raw))
            return Stored(inbound_id=row.id, duplicate=False)
    except (OperationalError, SQLAlchemyError, OSError) as error:
        reason = getattr(error, "orig", None) or error
        log.error("inbound.store_failed", error=f"{type(error).__name__}: {reason}",
                  transport=transport, size=len(raw))
        raise StorageError(f"the message could not be stored: {reason}") from error


def _record_duplicate(session: Session, existing: Inbound, recipients: list[str]) -> Stored:
    existing.duplicates += 1
    merged = list(dict.fromkeys([*(existing.envelope_recipients or []), *recipients]))
    existing.envelope_recipients = merged
    session.add(existing)
    session.commit()
    assert existing.id is not None
    log.info("inbound.duplicate", inbound_id=existing.id, message_id=existing.message_id,
             duplicates=existing.duplicates)
    return Stored(inbound_id=existing.id, duplicate=True)
