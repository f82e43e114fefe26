"""The outbox worker: delivers queued messages and records every attempt.

An item is written in the same transaction as its ticket, so it exists exactly
when the ticket does. Delivery happens afterwards: items are claimed a few at a
time in one commit (`lease.py`), handed to the transport one by one, and their
outcomes recorded in one commit, so a busy outbox costs the database two syncs
to disk per few items rather than two per item. However many passes run at
once, in one process or in several instances on one database, an item is in the
hands of one sender only. A failed
attempt is retried later with a growing delay; an item that cannot be sent
fails alone, with its reason, and the pass goes on with the next.

Exactly once, as far as SMTP allows: the SMTP relay transport commits a mark
on the item just before it sends the final "." of DATA (`lease.mark_committing`).
A sender that takes over an expired item carrying the mark does not send it
again: it records the item as sent (`outbox.assumed_sent`), because its previous
sender died while the relay was taking it. That turns the window for a
duplicate (relay said 250, sender died before committing `sent`) into a window
of microseconds (mark committed, dot not yet written) in which a mail can be
lost instead (RFC 1047). A connection lost after the dot but before the reply
is still retried, as SMTP requires. The maildir transport names files after
the item, so it has no window at all.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, func, or_, select
from sqlmodel import Session, col

from maild.log import get_logger
from maild.models import Outbox, OutboxState, utcnow
from maild.respond.delivery import (
    MarkingTransport,
    PermanentFailure,
    RecognisingTransport,
    SettlingTransport,
    TemporaryFailure,
    Transport,
)
from maild.respond.lease import Claim, Clock, LeaseKeeper, claim_due, finish_all, mark_committing

log = get_logger("maild.outbox")

FIRST_RETRY = timedelta(minutes=1)
LONGEST_RETRY = timedelta(hours=1)
LIFETIME = timedelta(days=2)
LEASE = timedelta(seconds=25)
BATCH = 500
# Items claimed in one commit, delivered one by one, and recorded in one commit.
CLAIM_BATCH = 16


@dataclass(frozen=True)
class FlushReport:
    """What one pass of the outbox worker did, and what it left for the next pass."""

    sent: int
    retried: int
    failed: int
    sent_by_purpose: dict[str, int] = field(default_factory=dict)
    left: int = 0              # items still due when the pass stopped at its batch size
    batch_size: int = BATCH
    lease_ends: datetime | None = None  # the earliest end of another sender's claim, if any


@dataclass(frozen=True)
class Waiting:
    """What the outbox holds that is not delivered yet."""

    due: int          # queued, and due now
    later: int        # queued for a later attempt
    sending: int      # claimed by a sender right now
    failed: int

    @property
    def total(self) -> int:
        """Everything that is still to be delivered (failed items excluded)."""
        return self.due + self.later + self.sending

    def describe(self) -> str:
        """One line for an operator: "outbox: 3 waiting (1 due now, 2 to retry later), ..."."""
        if not self.total and not self.failed:
            return "outbox: nothing waiting"
        parts = [f"{count} {label}" for label, count in (
            ("due now", self.due), ("to retry later", self.later),
            ("being sent", self.sending)) if count]
        line = f"outbox: {self.total} waiting" + (f" ({', '.join(parts)})" if parts else "")
        if self.failed:
            line += f", {self.failed} failed (maild outbox list --state failed)"
        return line


def retry_delay(attempts: int) -> timedelta:
    """Exponential backoff with jitter: about 1, 2, 4 ... minutes, at most an hour."""
    base = min(FIRST_RETRY * (2 ** max(0, attempts - 1)), LONGEST_RETRY)
    jitter = random.uniform(0.8, 1.2)  # noqa: S311 - jitter needs no cryptography
    return timedelta(seconds=base.total_seconds() * jitter)


def flush_outbox(engine: Engine, transport: Transport, *, now: datetime | None = None,
                 limit: int = BATCH, lifetime: timedelta = LIFETIME,
                 lease: timedelta = LEASE,
                 stop: Callable[[], bool] | None = None) -> FlushReport:
    """Deliver up to `limit` due items, `CLAIM_BATCH` claims at a time; say what was left over.

    A sender that dies with items claimed but their outcome not yet recorded leaves
    them to be taken over when the lease runs out: the maildir transport writes the
    same file again, and an SMTP item carrying its mark is recorded as sent.

    `now` is the pass's starting time (tests move it); it advances with the real
    clock, so a lease taken late in a long pass is as long as one taken early.
    """
    start, started = now or utcnow(), time.monotonic()

    def clock() -> datetime:
        return start + timedelta(seconds=time.monotonic() - started)

    counts: Counter[str] = Counter()
    cursor = taken = 0
    while taken < limit and not (stop is not None and stop()):
        claims = claim_due(engine, clock(), lease, after_id=cursor,
                           limit=min(CLAIM_BATCH, limit - taken))
        if not claims:
            break
        taken += len(claims)
        cursor = claims[-1].item_id
        outcomes: list[tuple[Claim, str, dict[str, Any]]] = []
        with LeaseKeeper(engine, claims, lease, clock):
            for claim in claims:
                outcome, values = _deliver(engine, transport, claim, clock=clock,
                                           lifetime=lifetime)
                outcomes.append((claim, outcome, values))
            outcomes = _settled(transport, outcomes, clock=clock, lifetime=lifetime)
        for claim, _, values in outcomes:
            last = values["history"][-1]
            if last["result"] == "sent":
                _bound(claim).info("outbox.sent", to=last["detail"], attempts=claim.attempts)
        held = finish_all(engine, [(claim, values) for claim, _, values in outcomes])
        for (claim, outcome, _), still in zip(outcomes, held, strict=True):
            if not still:
                _bound(claim).error("outbox.claim_lost", outcome=outcome,
                                    detail="another sender took the item over; its record "
                                           "stands")
            counts[outcome] += 1
            if outcome == "sent":
                counts[f"sent:{claim.purpose}"] += 1
    left = due_count(engine, clock()) if taken >= limit else 0
    if left:
        log.warning("outbox.batch_limit", batch_size=limit, delivered=counts["sent"], left=left,
                    detail="the rest goes in the next pass")
    return FlushReport(sent=counts["sent"], retried=counts["retried"], failed=counts["failed"],
                       sent_by_purpose={key[5:]: value for key, value in counts.items()
                                        if key.startswith("sent:")},
                       left=left, batch_size=limit, lease_ends=first_lease_end(engine))


def _bound(claim: Claim) -> Any:
    return log.bind(outbox_id=claim.item_id, ticket=claim.ticket, message_id=claim.message_id,
                    recipient=claim.recipient, purpose=claim.purpose)


def _settled(transport: Transport, outcomes: list[tuple[Claim, str, dict[str, Any]]], *,
             clock: Clock, lifetime: timedelta) -> list[tuple[Claim, str, dict[str, Any]]]:
    """The batch's outcomes once the transport made its deliveries durable.

    If it cannot (the disk failed), what it delivered is not recorded as sent but
    retried: the next attempt finds it delivered and settles it again.
    """
    if not isinstance(transport, SettlingTransport):
        return outcomes
    try:
        transport.settle()
    except OSError as error:
        return [(claim, *_failed(claim, error, _bound(claim), clock=clock, lifetime=lifetime,
                                 history=values["history"][:-1]))
                if outcome == "sent" else (claim, outcome, values)
                for claim, outcome, values in outcomes]
    return outcomes


def _deliver(engine: Engine, transport: Transport, claim: Claim, *, clock: Clock,
             lifetime: timedelta) -> tuple[str, dict[str, Any]]:
    """Hand one claimed item to the transport; returns the outcome and the values to record."""
    bound = _bound(claim)
    history = claim.history
    if claim.taken_over_from is not None:
        note = (f"taken over: the previous sender's lease ran out at "
                f"{claim.taken_over_from.isoformat()} (it may have stopped mid-delivery)")
        bound.warning("outbox.taken_over", lease_ended=claim.taken_over_from.isoformat())
        history = [*history, {"at": clock().isoformat(), "result": "taken over",
                              "detail": note}]
    values: dict[str, Any]
    if claim.committing_since is not None:
        return "sent", _assume_sent(claim, history, bound, clock)
    try:
        if isinstance(transport, MarkingTransport):
            where = transport.deliver_marked(
                claim.item_id, claim.raw, claim.envelope_sender, claim.recipient,
                lambda: mark_committing(engine, claim, clock()))
        elif claim.attempts == 1 and isinstance(transport, RecognisingTransport):
            # Its first claim: no transport has had it, so there is no earlier copy to find.
            where = transport.deliver_first(claim.item_id, claim.raw, claim.envelope_sender,
                                            claim.recipient)
        else:
            where = transport.deliver(claim.item_id, claim.raw, claim.envelope_sender,
                                      claim.recipient)
    except PermanentFailure as error:
        outcome = "failed"
        detail = f"permanent: {error}"[:2000]
        values = {"state": OutboxState.FAILED, "last_error": detail}
        bound.error("outbox.failed", error=detail, attempts=claim.attempts)
    except Exception as error:
        return _failed(claim, error, bound, clock=clock, lifetime=lifetime, history=history)
    else:
        outcome, detail = "sent", where  # logged once the transport settled it
        values = {"state": OutboxState.SENT, "sent_at": clock(), "last_error": None}
    values["history"] = [*history, {"at": clock().isoformat(), "attempt": claim.attempts,
                                    "result": outcome, "detail": detail}]
    return outcome, values


def _failed(claim: Claim, error: Exception, bound: Any, *, clock: Clock, lifetime: timedelta,
            history: list[dict[str, Any]]) -> tuple[str, dict[str, Any]]:
    """The outcome of a failed attempt that may succeed later: retried, or failed once too old.

    Temporary trouble, or anything unforeseen in this one item: it is retried with
    backoff until its lifetime ends, and the pass goes on with the next.
    """
    kind = "temporary" if isinstance(error, TemporaryFailure | OSError) else "unexpected"
    detail = f"{kind}: {type(error).__name__ + ': ' if kind == 'unexpected' else ''}{error}"
    detail = detail[:2000]
    now = clock()
    values: dict[str, Any]
    if now - claim.created_at >= lifetime:
        outcome = "failed"
        detail += f"; gave up after {claim.attempts} attempts"
        values = {"state": OutboxState.FAILED, "last_error": detail}
        bound.error("outbox.expired", error=detail, attempts=claim.attempts)
    else:
        outcome = "retried"
        next_at = now + retry_delay(claim.attempts)
        values = {"state": OutboxState.QUEUED, "last_error": detail, "next_attempt_at": next_at}
        event = bound.warning if kind == "temporary" else bound.exception
        event("outbox.retry", error=detail, attempts=claim.attempts,
              next_attempt_at=next_at.isoformat())
    values["history"] = [*history, {"at": clock().isoformat(), "attempt": claim.attempts,
                                    "result": outcome, "detail": detail}]
    return outcome, values


def _assume_sent(claim: Claim, history: list[dict[str, Any]], bound: Any,
                 clock: Clock) -> dict[str, Any]:
    """The record of an item whose dead sender was ending DATA: sending it again could duplicate.

    The previous sender committed its mark and then died before recording the
    relay's answer; the relay has the mail unless the sender died in the
    microseconds between the mark and the dot, so the item is not sent again.
    """
    assert claim.committing_since is not None
    detail = (f"assumed sent: the previous sender was sending the final dot at "
              f"{claim.committing_since.isoformat()} and stopped before recording the "
              f"relay's answer; not sent again, to avoid a duplicate")
    bound.warning("outbox.assumed_sent", committing_at=claim.committing_since.isoformat(),
                  attempts=claim.attempts - 1)
    return {"state": OutboxState.SENT, "sent_at": claim.committing_since, "last_error": None,
            "attempts": claim.attempts - 1,  # taking it over was no attempt
            "history": [*history, {"at": clock().isoformat(), "attempt": claim.attempts - 1,
                                   "result": "assumed sent", "detail": detail}]}


def first_lease_end(engine: Engine) -> datetime | None:
    """When the earliest claim on an item runs out: a dead sender's item is due then."""
    with Session(engine) as session:
        return session.scalar(select(func.min(col(Outbox.claimed_until)))
                              .where(col(Outbox.state) == OutboxState.SENDING))


def due_count(engine: Engine, now: datetime) -> int:
    """How many queued items are due at `now`."""
    with Session(engine) as session:
        return int(session.scalar(
            select(func.count()).select_from(Outbox)
            .where(col(Outbox.state) == OutboxState.QUEUED,
                   or_(col(Outbox.next_attempt_at).is_(None),
                       col(Outbox.next_attempt_at) <= now))) or 0)


def waiting(engine: Engine, now: datetime | None = None) -> Waiting:
    """What is still to be delivered: due now, due later, being sent, and failed."""
    now = now or utcnow()
    with Session(engine) as session:
        states = dict(session.execute(
            select(col(Outbox.state), func.count()).where(col(Outbox.state).in_(
                [OutboxState.QUEUED, OutboxState.SENDING, OutboxState.FAILED]))
            .group_by(col(Outbox.state))).tuples().all())
    due = due_count(engine, now)
    return Waiting(due=due, later=states.get(OutboxState.QUEUED, 0) - due,
                   sending=states.get(OutboxState.SENDING, 0),
                   failed=states.get(OutboxState.FAILED, 0))
