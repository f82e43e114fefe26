"""The outbox worker: delivers queued messages and records every attempt.

An item is written in the same transaction as its ticket, so it exists exactly
when the ticket does. Delivery happens afterwards; a failed attempt is retried
later with a growing delay. The only window for a duplicate is a crash between
the transport accepting the message and the item being marked sent; the
maildir transport closes even that window by naming files after the item.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Engine, or_, select
from sqlmodel import Session, col

from maild.log import get_logger
from maild.models import Outbox, OutboxState, Ticket, utcnow
from maild.respond.delivery import PermanentFailure, TemporaryFailure, Transport

log = get_logger("maild.outbox")

FIRST_RETRY = timedelta(minutes=1)
LONGEST_RETRY = timedelta(hours=1)
LIFETIME = timedelta(days=2)


@dataclass(frozen=True)
class FlushReport:
    """What one pass of the outbox worker did."""

    sent: int
    retried: int
    failed: int
    sent_by_purpose: dict[str, int] = field(default_factory=dict)


def retry_delay(attempts: int) -> timedelta:
    """Exponential backoff with jitter: about 1, 2, 4 ... minutes, at most an hour."""
    base = min(FIRST_RETRY * (2 ** max(0, attempts - 1)), LONGEST_RETRY)
    jitter = random.uniform(0.8, 1.2)  # noqa: S311 - jitter needs no cryptography
    return timedelta(seconds=base.total_seconds() * jitter)


def flush_outbox(engine: Engine, transport: Transport, now: datetime | None = None,
                 limit: int = 500, lifetime: timedelta = LIFETIME) -> FlushReport:
    """Deliver every queued item whose next attempt is due."""
    now = now or utcnow()
    counts: Counter[str] = Counter()
    with Session(engine) as session:
        ids = list(session.scalars(
            select(col(Outbox.id))
            .where(col(Outbox.state) == OutboxState.QUEUED)
            .where(or_(col(Outbox.next_attempt_at).is_(None),
                       col(Outbox.next_attempt_at) <= now))
            .order_by(col(Outbox.id))
            .limit(limit)
        ))
    for item_id in ids:
        if item_id is None:
            continue
        outcome, purpose = _deliver_one(engine, transport, item_id, now, lifetime)
        counts[outcome] += 1
        if outcome == "sent":
            counts[f"sent:{purpose}"] += 1
    return FlushReport(sent=counts["sent"], retried=counts["retried"], failed=counts["failed"],
                       sent_by_purpose={key[5:]: value for key, value in counts.items()
                                        if key.startswith("sent:")})


def _deliver_one(engine: Engine, transport: Transport, item_id: int, now: datetime,
                 lifetime: timedelta) -> tuple[str, str]:
    with Session(engine) as session:
        item = session.get(Outbox, item_id)
        if item is None or item.state != OutboxState.QUEUED:
            return "skipped", ""
        ticket = session.get(Ticket, item.ticket_id) if item.ticket_id is not None else None
        bound = log.bind(outbox_id=item_id, ticket=ticket.number if ticket else None,
                         message_id=item.message_id, recipient=item.recipient)
        item.attempts += 1
        try:
            where = transport.deliver(item_id, item.raw, item.envelope_sender, item.recipient)
        except PermanentFailure as error:
            item.state = OutboxState.FAILED
            item.last_error = f"permanent: {error}"[:2000]
            bound.error("outbox.failed", error=item.last_error, attempts=item.attempts)
            outcome, detail = "failed", item.last_error
        except (TemporaryFailure, OSError) as error:
            item.last_error = f"temporary: {error}"[:2000]
            if now - item.created_at >= lifetime:
                item.state = OutboxState.FAILED
                item.last_error += f"; gave up after {item.attempts} attempts"
                bound.error("outbox.expired", error=item.last_error, attempts=item.attempts)
                outcome = "failed"
            else:
                item.next_attempt_at = now + retry_delay(item.attempts)
                bound.warning("outbox.retry", error=item.last_error, attempts=item.attempts,
                              next_attempt_at=item.next_attempt_at.isoformat())
                outcome = "retried"
            detail = item.last_error
        else:
            item.state = OutboxState.SENT
            item.sent_at = now
            item.last_error = None
            bound.info("outbox.sent", to=where, attempts=item.attempts)
            outcome, detail = "sent", where
        item.history = [*(item.history or []), {"at": now.isoformat(), "attempt": item.attempts,
                                                 "result": outcome, "detail": detail}]
        purpose = item.purpose
        session.add(item)
        session.commit()
        return outcome, purpose


def retry_item(engine: Engine, item_id: int) -> bool:
    """Queue a failed item again for immediate delivery; False if there is no such item."""
    with Session(engine) as session:
        item = session.get(Outbox, item_id)
        if item is None:
            return False
        item.state = OutboxState.QUEUED
        item.next_attempt_at = None
        item.created_at = utcnow()
        session.add(item)
        session.commit()
        return True
