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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Connection, CursorResult, Engine, and_, bindparam, or_, select, update
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import col

from maild.bytes_apart import OUTBOX_BYTES, OUTBOX_WITH_BYTES
from maild.log import get_logger
from maild.models import Outbox, OutboxState, Ticket, table_of
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


def _due(now: datetime) -> ColumnElement[bool]:
    return and_(col(Outbox.state) == OutboxState.QUEUED,
                or_(col(Outbox.next_attempt_at).is_(None), col(Outbox.next_attempt_at) <= now))


def _lease_over(now: datetime) -> ColumnElement[bool]:
    return and_(col(Outbox.state) == OutboxState.SENDING, col(Outbox.claimed_until) < now)


def claimable(now: datetime) -> ColumnElement[bool]:
    """Queued and due, or held by a sender whose lease ran out."""
    return or_(_due(now), _lease_over(now))


_OUTBOX = table_of(Outbox)
_TICKET = table_of(Ticket)
_CANDIDATES = (
    select(_OUTBOX.c.id, _OUTBOX.c.state, _OUTBOX.c.claimed_until, _OUTBOX.c.committing_at,
           OUTBOX_BYTES.label("raw"), _OUTBOX.c.envelope_sender, _OUTBOX.c.recipient,
           _OUTBOX.c.message_id, _OUTBOX.c.purpose, _OUTBOX.c.attempts, _OUTBOX.c.created_at,
           _OUTBOX.c.history, _TICKET.c.number)
    .select_from(OUTBOX_WITH_BYTES.outerjoin(_TICKET, _TICKET.c.id == _OUTBOX.c.ticket_id)))
_HELD = and_(_OUTBOX.c.id == bindparam("item_id"), _OUTBOX.c.claim_token == bindparam("token"),
             _OUTBOX.c.state == OutboxState.SENDING)


def claim_due(engine: Engine, now: datetime, lease: timedelta, *, after_id: int = 0,
              limit: int = 16) -> list[Claim]:
    """Claim up to `limit` of the oldest claimable items above `after_id`, in one commit.

    Each item is taken by its own conditional UPDATE, so an item another sender took
    first is left to it; an empty list means none is left.
    """
    claim_item = (update(_OUTBOX).where(_OUTBOX.c.id == bindparam("item_id"), claimable(now))
                  .values(state=OutboxState.SENDING, claim_token=bindparam("token"),
                          claimed_until=now + lease, attempts=_OUTBOX.c.attempts + 1))
    while True:
        with write_turns(engine).turn(), engine.begin() as connection:
            ids = _first_claimable(connection, now, after_id, limit)
            if not ids:
                return []
            candidates = connection.execute(
                _CANDIDATES.where(_OUTBOX.c.id.in_(ids)).order_by(_OUTBOX.c.id)).all()
            claims: list[Claim] = []
            for item in candidates:
                token = secrets.token_hex(8)
                result = connection.execute(claim_item, {"item_id": item.id, "token": token})
                if cast("CursorResult[Any]", result).rowcount != 1:
                    continue  # another sender was faster
                taken_over = item.state == OutboxState.SENDING
                claims.append(Claim(
                    item_id=int(item.id), token=token, raw=item.raw,
                    envelope_sender=item.envelope_sender, recipient=item.recipient,
                    message_id=item.message_id, purpose=item.purpose, ticket=item.number,
                    attempts=item.attempts + 1, created_at=item.created_at,
                    history=list(item.history or []),
                    taken_over_from=item.claimed_until if taken_over else None,
                    committing_since=item.committing_at if taken_over else None))
        if claims:
            return claims
        after_id = ids[-1]


def _first_claimable(connection: Connection, now: datetime, after_id: int, limit: int
                     ) -> list[int]:
    """The ids of the first `limit` claimable items above `after_id`, in id order; on
    PostgreSQL locked, skipping those another sender is claiming.

    Each state is read on its own, in id order from its index, and stops after `limit`
    items: one query for both read every claimable item (and its bytes) to sort them,
    340 ms a claim on SQLite with 100,000 items due, so a backlog took time in its square.
    """
    found: list[int] = []
    for claimable_now in (_due(now), _lease_over(now)):
        query = (select(_OUTBOX.c.id).where(claimable_now, _OUTBOX.c.id > after_id)
                 .order_by(_OUTBOX.c.id).limit(limit))
        if connection.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        found += connection.execute(query).scalars()
    return sorted(found)[:limit]


def finish_all(engine: Engine, outcomes: Sequence[tuple[Claim, Mapping[str, Any]]]) -> list[bool]:
    """Write the outcome of each claimed item and release it, in one commit.

    Each answer says whether the claim was still held (False: another sender took the
    item over, and its record stands).
    """
    if not outcomes:
        return []
    with write_turns(engine).turn(), engine.begin() as connection:
        return [cast("CursorResult[Any]", connection.execute(
            update(_OUTBOX).where(_HELD).values(
                **values, claim_token=None, claimed_until=None, committing_at=None),
            {"item_id": claim.item_id, "token": claim.token})).rowcount == 1
            for claim, values in outcomes]


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
    """Renews the leases of claims in a thread while the transport works (a context manager).

    All the claims are renewed in one commit each time; a claim found lost (another
    sender took it over) is reported and no longer renewed.
    """

    def __init__(self, engine: Engine, claims: Sequence[Claim], lease: timedelta,
                 clock: Clock) -> None:
        self.engine = engine
        self.claims = list(claims)
        self.lease = lease
        self.clock = clock
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name=f"outbox-lease-{self.claims[0].item_id}")

    def __enter__(self) -> LeaseKeeper:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._done.set()
        self._thread.join()

    def _run(self) -> None:
        started = time.monotonic()
        interval = max(self.lease.total_seconds() / 3, 0.05)
        renew = (update(_OUTBOX)
                 .where(_OUTBOX.c.id == bindparam("item_id"),
                        _OUTBOX.c.claim_token == bindparam("token"))
                 .values(claimed_until=bindparam("until")))
        held = list(self.claims)
        while held and not self._done.wait(interval):
            if time.monotonic() - started > LONGEST_HOLD.total_seconds():
                for claim in held:
                    _bound(claim).error(
                        "outbox.send_stuck", held_seconds=round(time.monotonic() - started),
                        detail="lease no longer renewed; the item will be taken over")
                return
            try:
                until = self.clock() + self.lease
                with write_turns(self.engine).turn(), self.engine.begin() as connection:
                    renewed = [cast("CursorResult[Any]", connection.execute(renew, {
                        "item_id": claim.item_id, "token": claim.token, "until": until,
                    })).rowcount == 1 for claim in held]
            except Exception as error:  # the next renewal tries again
                log.warning("outbox.lease_renewal_failed", items=[c.item_id for c in held],
                            error=f"{type(error).__name__}: {error}"[:300])
                continue
            for claim, still in zip(held, renewed, strict=True):
                if not still:
                    _bound(claim).error("outbox.claim_lost")
            held = [claim for claim, still in zip(held, renewed, strict=True) if still]


def _bound(claim: Claim) -> Any:
    return log.bind(outbox_id=claim.item_id, ticket=claim.ticket, message_id=claim.message_id)
