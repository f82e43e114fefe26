"""Claiming outbox items: one sender holds an item at a time, for a lease it keeps renewing.

A sender claims an item by moving it from `queued` (and due) to `sending` with a
fresh token and `claimed_until = now + lease`, in one conditional UPDATE whose
row count decides who won; on PostgreSQL the candidates are read with
`FOR UPDATE SKIP LOCKED`, so instances do not even queue behind each other.
While the transport works, a keeper thread renews the lease every third of it,
so a slow relay is never taken over; when the holder dies the renewals stop and
another sender takes the item over once the lease has run out. Finishing is
conditional on the token too, so a sender that lost its claim changes nothing.

SMTP leaves one window that no lease closes: the relay has taken the message
(it answered 250 to the final ".") but the sender dies before it commits
`sent`; the next sender would send it again. So a sender that speaks SMTP
commits a mark (`committing_at`, under its token) after the body and just
before the final dot (`mark_committing`). An item taken over with that mark is
not sent again but recorded as sent (`outbox.assumed_sent`): its sender died
while the relay was taking it. This trades the duplicate for a possible loss
in a much shorter window, the microseconds between the mark's commit and the
dot leaving (RFC 1047): a sender killed exactly there leaves a mail recorded as
sent that the relay never finished receiving.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, Engine, and_, or_, select, update
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col

from maild.log import get_logger
from maild.models import Outbox, OutboxState, Ticket
from maild.respond.delivery import TemporaryFailure
from maild.write_turns import write_turns

log = get_logger("maild.outbox")

# A send still renewing its lease after this long is taken as stuck: the keeper
# stops renewing, and the item is taken over once the lease runs out.
LONGEST_HOLD = timedelta(minutes=15)

Clock = Callable[[], datetime]


@dataclass(frozen=True)
class Claim:
    """An outbox item held by this sender, with what delivering it needs."""

    item_id: int
    token: str
    raw: bytes
    envelope_sender: str
    recipient: str
    message_id: str
    purpose: str
    ticket: str | None
    attempts: int
    created_at: datetime
    history: list[dict[str, Any]]
    taken_over_from: datetime | None  # the lease that ran out, when a dead sender held it
    committing_since: datetime | None = None  # a dead sender's mark: it was sending the dot


def claimable(now: datetime) -> ColumnElement[bool]:
    """Queued and due, or held by a sender whose lease ran out."""
    return or_(
        and_(col(Outbox.state) == OutboxState.QUEUED,
             or_(col(Outbox.next_attempt_at).is_(None), col(Outbox.next_attempt_at) <= now)),
        and_(col(Outbox.state) == OutboxState.SENDING, col(Outbox.claimed_until) < now),
    )


def claim_next(engine: Engine, now: datetime, lease: timedelta, after_id: int = 0,
               candidates: int = 8) -> Claim | None:
    """Claim the oldest claimable item with an id above `after_id`; None when none is left."""
    while True:
        with write_turns(engine).turn(), Session(engine) as session:
            query = (select(col(Outbox.id)).where(claimable(now), col(Outbox.id) > after_id)
                     .order_by(col(Outbox.id)).limit(candidates))
            if session.get_bind().dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True)
            ids = [int(item_id) for item_id in session.scalars(query) if item_id is not None]
            if not ids:
                return None
            for item_id in ids:
                item = session.get(Outbox, item_id)
                if item is None:
                    continue
                taken_over = item.state == OutboxState.SENDING
                previous = item.claimed_until if taken_over else None
                committing = item.committing_at if taken_over else None
                token = secrets.token_hex(8)
                result = session.execute(
                    update(Outbox)
                    .where(col(Outbox.id) == item_id, claimable(now))
                    .values(state=OutboxState.SENDING, claim_token=token,
                            claimed_until=now + lease, attempts=col(Outbox.attempts) + 1)
                    .execution_options(synchronize_session=False))
                if cast("CursorResult[Any]", result).rowcount != 1:
                    continue  # another sender was faster
                ticket = (session.get(Ticket, item.ticket_id)
                          if item.ticket_id is not None else None)
                claim = Claim(item_id=item_id, token=token, raw=item.raw,
                              envelope_sender=item.envelope_sender, recipient=item.recipient,
                              message_id=item.message_id, purpose=item.purpose,
                              ticket=ticket.number if ticket else None,
                              attempts=item.attempts + 1, created_at=item.created_at,
                              history=list(item.history or []), taken_over_from=previous,
                              committing_since=committing)
                session.commit()
                return claim
            session.commit()
        after_id = ids[-1]


def finish(engine: Engine, claim: Claim, values: Mapping[str, Any]) -> bool:
    """Write the outcome of a claimed item and release it; False when the claim was lost."""
    with write_turns(engine).turn(), engine.begin() as connection:
        result = connection.execute(
            update(Outbox)
            .where(col(Outbox.id) == claim.item_id, col(Outbox.claim_token) == claim.token,
                   col(Outbox.state) == OutboxState.SENDING)
            .values(**values, claim_token=None, claimed_until=None, committing_at=None))
        return cast("CursorResult[Any]", result).rowcount == 1


class ClaimLost(TemporaryFailure):
    """The claim ran out and another sender holds the item: this one must not end DATA."""


def mark_committing(engine: Engine, claim: Claim, now: datetime) -> None:
    """Commit that the holder is about to send the final dot; raise ClaimLost if it is not held.

    Until this returns, the relay cannot have the message; once it has returned, a
    sender taking the item over records it as sent instead of sending it again.
    """
    with write_turns(engine).turn(), engine.begin() as connection:
        result = connection.execute(
            update(Outbox)
            .where(col(Outbox.id) == claim.item_id, col(Outbox.claim_token) == claim.token,
                   col(Outbox.state) == OutboxState.SENDING)
            .values(committing_at=now))
    if cast("CursorResult[Any]", result).rowcount != 1:
        raise ClaimLost(f"outbox item {claim.item_id} is no longer held by this sender; "
                        f"DATA is abandoned before its end")


class LeaseKeeper:
    """Renews a claim's lease in a thread while the transport works (a context manager)."""

    def __init__(self, engine: Engine, claim: Claim, lease: timedelta, clock: Clock) -> None:
        self.engine = engine
        self.claim = claim
        self.lease = lease
        self.clock = clock
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name=f"outbox-lease-{claim.item_id}")

    def __enter__(self) -> LeaseKeeper:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._done.set()
        self._thread.join()

    def _run(self) -> None:
        started = time.monotonic()
        interval = max(self.lease.total_seconds() / 3, 0.05)
        bound = log.bind(outbox_id=self.claim.item_id, ticket=self.claim.ticket,
                         message_id=self.claim.message_id)
        while not self._done.wait(interval):
            if time.monotonic() - started > LONGEST_HOLD.total_seconds():
                bound.error("outbox.send_stuck", held_seconds=round(time.monotonic() - started),
                            detail="lease no longer renewed; the item will be taken over")
                return
            try:
                with write_turns(self.engine).turn(), self.engine.begin() as connection:
                    result = connection.execute(
                        update(Outbox)
                        .where(col(Outbox.id) == self.claim.item_id,
                               col(Outbox.claim_token) == self.claim.token)
                        .values(claimed_until=self.clock() + self.lease))
                renewed = cast("CursorResult[Any]", result).rowcount == 1
            except Exception as error:  # the next renewal tries again
                bound.warning("outbox.lease_renewal_failed",
                              error=f"{type(error).__name__}: {error}"[:300])
                continue
            if not renewed:
                bound.error("outbox.claim_lost")
                return
