"""The processing worker: claims stored messages, runs the pipeline, survives crashes.

A message is claimed with a lease, and its attempt is counted before any
work starts, so even a process that dies mid-way (kill -9, out of memory)
leaves a trace. A message whose processing failed is retried; once it has
failed `max_attempts` times it is quarantined with the error instead of
crash-looping. The raw bytes are never touched.
"""

from __future__ import annotations

import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, Engine, and_, or_, select, update
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col

from maild.cluster.heartbeat import ClaimHeartbeat
from maild.log import get_logger
from maild.models import Inbound, InboundState, utcnow
from maild.parse import UnparseableMail, parse_mail
from maild.pipeline import Envelope, decide, identity_of, unparseable_decision
from maild.respond.policy import AckLimits
from maild.routing.model import Rules
from maild.tickets.numbering import TicketNumbering
from maild.tickets.service import DatabaseTickets, apply_decision

log = get_logger("maild.processing")


@dataclass(frozen=True)
class Outcome:
    """How processing one message ended."""

    inbound_id: int
    state: str                 # processed, quarantined, or received (to be retried)
    kind: str | None = None
    ticket: str | None = None
    error: str | None = None


@dataclass
class Processor:
    """Runs the pipeline on stored messages; `rules` is read once per message."""

    engine: Engine
    rules: Callable[[], Rules]
    numbering: TicketNumbering
    mail_domain: str | None = None
    max_attempts: int = 3
    lease: timedelta = timedelta(minutes=5)
    clock: Callable[[], datetime] = utcnow
    limits: AckLimits = field(default_factory=AckLimits)
    reopen_within: timedelta = timedelta(days=14)
    heartbeat: ClaimHeartbeat | None = None  # renews the leases of claimed messages

    def domain(self, rules: Rules) -> str:
        """The domain of maild's Message-IDs and loop marker."""
        return self.mail_domain or rules.default_address.address.rpartition("@")[2]

    def _claimable(self, now: datetime) -> ColumnElement[bool]:
        return or_(
            col(Inbound.state) == InboundState.RECEIVED,
            and_(col(Inbound.state) == InboundState.PROCESSING,
                 col(Inbound.claimed_until) < now),
        )

    def claim(self, only_id: int | None = None, after_id: int = 0) -> int | None:
        """Claim the oldest waiting message after `after_id` (or `only_id`); None if none waits."""
        claimed = self.claim_batch(only_id=only_id, after_id=after_id, size=1)
        return claimed[0] if claimed else None

    def claim_batch(self, *, only_id: int | None = None, after_id: int = 0,
                    size: int = 32) -> list[int]:
        """Lease up to `size` waiting messages after `after_id` in one transaction, in id order.

        A message that has used up its attempts is quarantined instead of claimed. The
        attempt itself is counted per message, just before it is processed (`process`), so
        a message that kills the process never uses up the attempts of its batch-mates.
        """
        while True:
            now = self.clock()
            with Session(self.engine) as session:
                query = select(col(Inbound.id), col(Inbound.state), col(Inbound.attempts),
                               col(Inbound.last_error)).where(self._claimable(now))
                if only_id is not None:
                    query = query.where(col(Inbound.id) == only_id)
                else:
                    query = query.where(col(Inbound.id) > after_id)
                query = query.order_by(col(Inbound.id)).limit(size)
                if session.get_bind().dialect.name == "postgresql":
                    query = query.with_for_update(skip_locked=True)
                rows = session.execute(query).all()
                if not rows:
                    return []
                claimed: list[int] = []
                for inbound_id, state, attempts, last_error in rows:
                    after_id = max(after_id, inbound_id)
                    if attempts >= self.max_attempts:
                        reason = last_error or "the process stopped while processing it"
                        session.execute(update(Inbound).where(
                            col(Inbound.id) == inbound_id).values(
                            state=InboundState.QUARANTINED, claimed_until=None,
                            last_error=f"processing failed {attempts} times; last: {reason}"))
                        log.error("inbound.quarantined", inbound_id=inbound_id,
                                  attempts=attempts, reason=reason)
                        continue
                    result = session.execute(update(Inbound).where(
                        col(Inbound.id) == inbound_id,
                        col(Inbound.state) == state,
                        col(Inbound.attempts) == attempts,
                    ).values(state=InboundState.PROCESSING, claimed_until=now + self.lease))
                    if cast("CursorResult[Any]", result).rowcount == 1:
                        claimed.append(int(inbound_id))
                session.commit()
            if self.heartbeat is not None:
                self.heartbeat.hold(claimed)
            if claimed or only_id is not None:
                return claimed

    def process(self, inbound_id: int) -> Outcome:
        """Run the pipeline on a claimed message and commit its ticket, or record the failure."""
        bound = log.bind(inbound_id=inbound_id)
        try:
            self.count_attempt(inbound_id)
            return self._process(inbound_id)
        except Exception as error:
            summary = f"{type(error).__name__}: {error}"[:500]
            detail = traceback.format_exc(limit=8)[-4000:]
            with Session(self.engine) as session:
                inbound = session.get(Inbound, inbound_id)
                assert inbound is not None
                final = inbound.attempts >= self.max_attempts
                inbound.state = InboundState.QUARANTINED if final else InboundState.RECEIVED
                inbound.claimed_until = None
                inbound.last_error = f"{summary}\n{detail}"
                if final:
                    inbound.last_error = (f"processing failed {inbound.attempts} times; last: "
                                          f"{inbound.last_error}")
                session.add(inbound)
                session.commit()
                state, attempts, message_id = inbound.state, inbound.attempts, inbound.message_id
            event = "inbound.quarantined" if final else "inbound.retry_later"
            bound.error(event, error=summary, attempts=attempts, message_id=message_id)
            return Outcome(inbound_id, state, error=summary)
        finally:
            if self.heartbeat is not None:
                self.heartbeat.drop([inbound_id])

    def _process(self, inbound_id: int) -> Outcome:
        rules = self.rules()
        now = self.clock()
        with Session(self.engine) as session:
            inbound = session.get(Inbound, inbound_id)
            assert inbound is not None
            bound = log.bind(inbound_id=inbound_id, message_id=inbound.message_id)
            envelope = Envelope(sender=inbound.envelope_sender,
                                recipients=tuple(inbound.envelope_recipients or ()),
                                received_at=inbound.received_at, transport=inbound.transport)
            try:
                mail = parse_mail(inbound.raw)
            except UnparseableMail as error:
                decision = unparseable_decision(str(error), envelope, rules)
                inbound.state = InboundState.QUARANTINED
                inbound.kind = "unparseable"
                inbound.decision = decision.to_json()
                inbound.last_error = str(error)
                inbound.claimed_until = None
                inbound.processed_at = now
                session.add(inbound)
                session.commit()
                bound.warning("inbound.unparseable", reason=str(error))
                return Outcome(inbound_id, InboundState.QUARANTINED, kind="unparseable",
                               error=str(error))
            decision = decide(mail, envelope, rules, lookup=DatabaseTickets(session),
                              numbering=self.numbering,
                              identity=identity_of(rules, self.mail_domain),
                              limits=self.limits, reopen_within=self.reopen_within)
            applied = apply_decision(session, inbound, mail, decision, rules=rules,
                                     numbering=self.numbering, domain=self.domain(rules),
                                     now=now)
            inbound.state = InboundState.PROCESSED
            inbound.kind = decision.kind
            inbound.decision = decision.to_json()
            inbound.claimed_until = None
            inbound.processed_at = now
            inbound.last_error = None
            session.add(inbound)
            session.commit()
            bound.info("inbound.processed", kind=decision.kind, ticket=applied.ticket,
                       customer=decision.customer, queue=decision.queue,
                       ack=decision.ack, ack_reason=decision.ack_reason)
            return Outcome(inbound_id, InboundState.PROCESSED, kind=decision.kind,
                           ticket=applied.ticket)

    def run_pending(self, limit: int | None = None,
                    progress: Callable[[Outcome], None] | None = None,
                    stop: Callable[[], bool] | None = None) -> Counter[str]:
        """One pass over the waiting messages (each tried at most once); counts outcomes by state.

        A message that fails is left for the next pass, so three failures take three passes.
        """
        self.rules()  # broken rules stop the pass here, before any message is claimed
        counts: Counter[str] = Counter()
        done = 0
        cursor = 0
        while (limit is None or done < limit) and not (stop is not None and stop()):
            size = 32 if limit is None else max(1, min(32, limit - done))
            batch = self.claim_batch(after_id=cursor, size=size)
            if not batch:
                break
            for position, inbound_id in enumerate(batch):
                if stop is not None and stop():
                    self.release(batch[position:])
                    return counts
                cursor = inbound_id
                outcome = self.process(inbound_id)
                done += 1
                counts[outcome.state] += 1
                if outcome.kind:
                    counts[f"kind:{outcome.kind}"] += 1
                if progress is not None:
                    progress(outcome)
        return counts

    def release(self, inbound_ids: list[int]) -> None:
        """Give leased, unprocessed messages back for the next pass."""
        with Session(self.engine) as session:
            session.execute(update(Inbound).where(
                col(Inbound.id).in_(inbound_ids),
                col(Inbound.state) == InboundState.PROCESSING,
            ).values(state=InboundState.RECEIVED, claimed_until=None))
            session.commit()
        if self.heartbeat is not None:
            self.heartbeat.drop(inbound_ids)

    def count_attempt(self, inbound_id: int) -> None:
        """Commit that processing of `inbound_id` starts now, so even a crash counts."""
        with self.engine.begin() as connection:
            connection.execute(update(Inbound).where(col(Inbound.id) == inbound_id).values(
                attempts=col(Inbound.attempts) + 1))

    def process_now(self, inbound_id: int) -> Outcome | None:
        """Claim and process one message at once; None when it is not waiting."""
        self.rules()  # broken rules stop here, before the message is claimed
        if self.claim(only_id=inbound_id) is None:
            return None
        return self.process(inbound_id)
