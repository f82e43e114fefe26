"""The processing worker: claims stored messages, runs the pipeline, survives crashes.

Messages are claimed in batches with a lease, and their attempt is counted in
the claim's commit, so even a process that dies mid-way (kill -9, out of
memory) leaves a trace. A batch is processed in one transaction: one commit
(one fsync) for the batch. A message that fails is rolled back alone: its batch
is then processed again with a savepoint per message, which a batch that fails
nowhere does without. A message tried before is retried alone, so a
poison message cannot use up its batch-mates' attempts. A message whose
processing failed is retried; once it has failed `max_attempts` times it is
quarantined with the error instead of crash-looping. The raw bytes are never
touched.

A batch's rows are read, and its smaller messages parsed and read (what a
decision concludes without the database: `maild.reading`), before the batch
takes its write turn: on SQLite the write lock is then held for the lookups and
the writes only, so intake waits less for it, and on PostgreSQL several
processors parse and read at once while one holds the acknowledgement accounting.
"""

from __future__ import annotations

import contextlib
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Integer,
    and_,
    bindparam,
    case,
    or_,
    select,
    update,
)
from sqlmodel import Session, col

from maild.bytes_apart import (
    INBOUND_BYTES,
    INBOUND_WITH_BYTES,
    inbound_blob_home,
    inbound_bytes,
)
from maild.cluster.heartbeat import ClaimHeartbeat
from maild.envelope import Envelope, Identity, identity_of
from maild.json_columns import SerializedJson
from maild.log import get_logger
from maild.models import Inbound, InboundState, table_of, utcnow
from maild.parse import ParsedMail, UnparseableMail, parse_mail, parse_mail_pieces
from maild.pipeline import decide_reading, unparseable_decision
from maild.prepared import Prepared, execute_sql
from maild.reading import Reading
from maild.respond.accounting import hold_ack_accounting
from maild.respond.policy import AckLimits
from maild.routing.model import Rules
from maild.sqlite_blobs import blob_pieces, in_pieces
from maild.tickets.correlate import named_ids
from maild.tickets.lookup import DatabaseTickets
from maild.tickets.numbering import TicketNumbering
from maild.tickets.rows import AnyRow
from maild.tickets.service import StoredMessage, apply_decision
from maild.write_turns import WriteTurns, write_turns

log = get_logger("maild.processing")

_INBOUND = table_of(Inbound)
# A batch's rows come with one query, and with them the bytes of every message up to this
# size; a larger one is read on its own when its turn comes (a batch of large mails must
# not sit in memory at once).
BATCH_RAW_LIMIT = 256 * 1024
_BATCH_ROWS = Prepared(select(
    _INBOUND.c.id, _INBOUND.c.received_at, _INBOUND.c.transport, _INBOUND.c.envelope_sender,
    _INBOUND.c.envelope_recipients, _INBOUND.c.message_id, _INBOUND.c.ticket_id,
    case((_INBOUND.c.size <= BATCH_RAW_LIMIT, INBOUND_BYTES), else_=None).label("raw"),
).select_from(INBOUND_WITH_BYTES)
 .where(_INBOUND.c.id.in_(bindparam("inbound_ids", expanding=True))))
# How many bytes of mail a batch parses before it takes its write turn; the rest of the
# batch is parsed in the turn (parsed mail takes a few times its size in memory).
PARSE_AHEAD_BYTES = 2 * 1024 * 1024
_ATTEMPTS = Prepared(select(_INBOUND.c.attempts, _INBOUND.c.message_id).where(
    _INBOUND.c.id == bindparam("inbound_id")))
# The statements written for every message, prepared once (`maild.prepared`); the columns
# to set of `_UPDATE` come with each execution's parameters.
_BY_ID = _INBOUND.update().where(_INBOUND.c.id == bindparam("inbound_id"))
_UPDATE = Prepared(_BY_ID)
_CLAIM = Prepared(_INBOUND.update().where(
    _INBOUND.c.id == bindparam("inbound_id"), _INBOUND.c.state == bindparam("old_state"),
    _INBOUND.c.attempts == bindparam("old_attempts")))


_WAITING_COLUMNS = (_INBOUND.c.id, _INBOUND.c.state, _INBOUND.c.attempts, _INBOUND.c.last_error)
_EXPIRED = and_(_INBOUND.c.state == InboundState.PROCESSING,
                _INBOUND.c.claimed_until < bindparam("now"))


def _first_waiting(waiting: ColumnElement[bool], *, locking: bool) -> Prepared:
    """The first `size` messages after `after_id` for which `waiting` holds, in id order;
    `locking`, skipping (and locking) those another instance is claiming (PostgreSQL)."""
    query = select(*_WAITING_COLUMNS).where(waiting, _INBOUND.c.id > bindparam("after_id")) \
        .order_by(_INBOUND.c.id).limit(bindparam("size", type_=Integer))
    return Prepared(query.with_for_update(skip_locked=True) if locking else query)


# Each state on its own: read in id order from the state's index, a query stops after
# `size` rows, where one for both states collected every waiting message to sort them
# (45 ms a claim on SQLite with 100,000 waiting, so a backlog took time in its square).
_FIRST_RECEIVED = {locking: _first_waiting(_INBOUND.c.state == InboundState.RECEIVED,
                                           locking=locking) for locking in (False, True)}
_FIRST_EXPIRED = {locking: _first_waiting(_EXPIRED, locking=locking)
                  for locking in (False, True)}
_ONE = select(*_WAITING_COLUMNS).where(or_(_INBOUND.c.state == InboundState.RECEIVED, _EXPIRED),
                                        _INBOUND.c.id == bindparam("only_id"))
_ONE_WAITING = {False: Prepared(_ONE), True: Prepared(_ONE.with_for_update(skip_locked=True))}


def _candidates(connection: Connection, *, only_id: int | None, after_id: int, size: int,
                now: datetime) -> list[AnyRow]:
    """The waiting messages a claim looks at, in id order: the one `only_id` (if it waits),
    else the first `size` after `after_id`, never tried or their lease run out."""
    locking = connection.dialect.name == "postgresql"
    if only_id is not None:
        return list(_ONE_WAITING[locking].run(connection, {"now": now, "only_id": only_id}).rows)
    given = {"after_id": after_id, "size": size}
    rows = [*_FIRST_RECEIVED[locking].run(connection, given).rows,
            *_FIRST_EXPIRED[locking].run(connection, {**given, "now": now}).rows]
    return sorted(rows, key=lambda row: int(row[0]))[:size]


# A batch's messages never tried before, claimed in one statement: those it returns.
_CLAIM_FRESH = Prepared(_INBOUND.update().where(
    _INBOUND.c.id.in_(bindparam("inbound_ids", expanding=True)),
    _INBOUND.c.state == InboundState.RECEIVED, _INBOUND.c.attempts == 0,
).returning(_INBOUND.c.id))
_PROCESSED = Prepared(_BY_ID.where(_INBOUND.c.state == InboundState.PROCESSING))
_PROCESSED_FENCED = Prepared(_BY_ID.where(_INBOUND.c.state == InboundState.PROCESSING,
                                          _INBOUND.c.attempts == bindparam("claimed")))

# A reply whose original another process holds, claimed but not yet committed, would open a
# ticket of its own: its batch waits up to this long for that commit before it decides.
EARLIER_WAIT = 2.0
# The Message-IDs of a reply looked for among the messages in flight: its In-Reply-To and
# newest References (a hostile References header names a thousand).
ORIGINALS_LOOKED_FOR = 8
_NAMED_IN_FLIGHT = Prepared(select(_INBOUND.c.id).where(
    _INBOUND.c.state == InboundState.PROCESSING,
    _INBOUND.c.claimed_until > bindparam("now"),
    _INBOUND.c.message_id.in_(bindparam("named", expanding=True)),
    _INBOUND.c.id.not_in(bindparam("mine", expanding=True))).limit(1))


@contextmanager
def _savepoint(session: Session, name: str = "maild_message") -> Iterator[None]:
    """A savepoint around one message (or the next claim): rolled back alone if it raises.

    Written as SQL of its own, on the driver's cursor: SQLAlchemy compiles its savepoint
    statements anew each time, which costs more than the statements do. The session holds
    no ORM objects here; should one be added all the same, it is flushed inside the
    savepoint.
    """
    connection = session.connection()
    execute_sql(connection, f"SAVEPOINT {name}")
    try:
        yield
        session.flush()
    except BaseException:
        execute_sql(connection, f"ROLLBACK TO SAVEPOINT {name}")
        execute_sql(connection, f"RELEASE SAVEPOINT {name}")
        session.expunge_all()
        raise
    execute_sql(connection, f"RELEASE SAVEPOINT {name}")


@dataclass(frozen=True)
class _Read:
    """A claimed message as read before its write turn: its row, and its parse and reading if
    it had them."""

    row: AnyRow
    reading: Reading | None = None
    unparseable: UnparseableMail | None = None


def _envelope(row: AnyRow) -> Envelope:
    return Envelope(sender=row.envelope_sender, recipients=tuple(row.envelope_recipients or ()),
                    received_at=row.received_at, transport=row.transport)


def _parsed(row: AnyRow, raw: bytes, rules: Rules, identity: Identity) -> _Read:
    try:
        mail = parse_mail(raw)
    except UnparseableMail as error:
        return _Read(row, unparseable=error)
    return _Read(row, reading=Reading(mail, _envelope(row), rules, identity))


def _read_raw(connection: Connection, inbound_id: int) -> bytes:
    raw = inbound_bytes(connection, inbound_id)
    if raw is None:
        raise LookupError(f"inbound {inbound_id} is not stored")
    return raw


def _parse_in_pieces(connection: Connection, inbound_id: int) -> ParsedMail:
    """Parse a stored message read a piece at a time: it is not in memory whole meanwhile."""
    home = inbound_blob_home(connection, inbound_id)
    with blob_pieces(connection, home, "raw", inbound_id) as pieces:
        return parse_mail_pieces(pieces, whole=lambda: _read_raw(connection, inbound_id))


@dataclass(frozen=True)
class _Note:
    """The log event of one message's outcome, written once its turn is over."""

    inbound_id: int
    level: str  # info, warning or error
    event: str
    fields: dict[str, Any]


def _log_outcomes(notes: list[_Note]) -> None:
    """Write the log events of a turn's messages (`Processor._transaction`)."""
    for note in notes:
        getattr(log.bind(inbound_id=note.inbound_id), note.level)(note.event, **note.fields)


class ClaimLost(Exception):
    """The message's claim was taken over by another processor before this one committed."""


class _MessageFailed(Exception):
    """A message of a batch processed without savepoints raised: the batch is rolled back."""

    def __init__(self, inbound_id: int, message_id: str | None) -> None:
        super().__init__(f"inbound {inbound_id} failed")
        self.inbound_id = inbound_id
        self.message_id = message_id


@dataclass(frozen=True)
class Outcome:
    """How processing one message ended."""

    inbound_id: int
    state: str  # processed, quarantined, received (to be retried), claim_lost (another has it)
    kind: str | None = None
    ticket: str | None = None
    error: str | None = None


def count_outcome(counts: Counter[str], state: str, kind: str | None) -> None:
    """Add one message's outcome to a pass's counts: by state, and by kind (`kind:new`)."""
    counts[state] += 1
    if kind:
        counts[f"kind:{kind}"] += 1


@dataclass
class Processor:
    """Runs the pipeline on stored messages in batches; `rules` is read once per batch."""

    engine: Engine
    rules: Callable[[], Rules]
    numbering: TicketNumbering
    mail_domain: str | None = None
    max_attempts: int = 3
    lease: timedelta = timedelta(minutes=5)
    clock: Callable[[], datetime] = utcnow
    limits: AckLimits = field(default_factory=AckLimits)
    reopen_within: timedelta = timedelta(days=14)
    batch_size: int = 32
    heartbeat: ClaimHeartbeat | None = None  # renews the leases of claimed messages
    # Whether a batch's messages are read (`maild.reading`) before its write turn, or each
    # in its turn. Ahead is better where processing has a process of its own; beside the
    # daemon's listeners it is not: their event loop shares this process's GIL, and the
    # long stretch of pure Python would hold up SMTP replies (bench/offered.py: p99 at
    # 200/s 29-42 ms ahead, 18-26 ms in the turn).
    reads_ahead: bool = True
    # The attempt count each claim of this processor wrote: its fencing token. Another
    # instance that claims the message after our lease ran out counts another attempt.
    _claims: dict[int, int] = field(default_factory=dict, repr=False)

    def domain(self, rules: Rules) -> str:
        """The domain of maild's Message-IDs and loop marker."""
        return self.mail_domain or rules.default_address.address.rpartition("@")[2]

    def claim(self, only_id: int | None = None, after_id: int = 0) -> int | None:
        """Claim the oldest waiting message after `after_id` (or `only_id`); None if none waits."""
        claimed = self.claim_batch(only_id=only_id, after_id=after_id, size=1)
        return claimed[0] if claimed else None

    def claim_batch(self, *, only_id: int | None = None, after_id: int = 0,
                    size: int = 32, within: Session | None = None) -> list[int]:
        """Lease up to `size` waiting messages after `after_id` in id order, counting an attempt.

        The attempt is committed with the claim, so even a process that dies while it works
        leaves a trace. A message that was tried before (it failed, or a process died while
        holding it) is claimed alone: a poison message that kills the process costs each of
        its batch-mates one attempt at most, never their last. A message that has used up
        its attempts is quarantined instead of claimed. The messages never tried before are
        claimed with one statement.

        `within`: the claim is made in that session's transaction, in the write turn its
        caller holds, and committed with it; the caller hands the claimed messages to the
        heartbeat once it has committed (`_hold_claimed`), or lets go of them
        (`_forget_claimed`) if it has not.
        """
        while True:
            now = self.clock()
            with contextlib.ExitStack() as stack:
                if within is None:
                    stack.enter_context(write_turns(self.engine).turn())
                    session = stack.enter_context(Session(self.engine))
                else:
                    session = within
                connection = session.connection()
                rows = _candidates(connection, only_id=only_id, after_id=after_id, size=size,
                                   now=now)
                if not rows:
                    return []
                claimed: list[int] = []
                fresh: list[int] = []  # never tried: claimed together after the loop
                for inbound_id, state, attempts, last_error in rows:
                    if attempts >= self.max_attempts:
                        after_id = max(after_id, inbound_id)
                        reason = last_error or "the process stopped while processing it"
                        _UPDATE.run(connection, {
                            "inbound_id": inbound_id, "state": InboundState.QUARANTINED,
                            "claimed_until": None,
                            "last_error": f"processing failed {attempts} times; last: {reason}"})
                        log.error("inbound.quarantined", inbound_id=inbound_id,
                                  attempts=attempts, reason=reason)
                        continue
                    if attempts and (claimed or fresh):
                        break  # tried before: it goes alone, in the next batch
                    after_id = max(after_id, inbound_id)
                    if not attempts and state == InboundState.RECEIVED:
                        fresh.append(int(inbound_id))
                        continue
                    result = _CLAIM.run(connection, {
                        "inbound_id": inbound_id, "old_state": state, "old_attempts": attempts,
                        "state": InboundState.PROCESSING, "claimed_until": now + self.lease,
                        "attempts": attempts + 1})
                    if result.rowcount == 1:
                        claimed.append(int(inbound_id))
                        self._claims[int(inbound_id)] = attempts + 1
                        if attempts:
                            log.info("inbound.retried_alone", inbound_id=inbound_id,
                                     attempt=attempts + 1)
                            break  # alone: nothing joins its batch
                if fresh:
                    taken = _CLAIM_FRESH.run(connection, {
                        "inbound_ids": fresh, "state": InboundState.PROCESSING,
                        "claimed_until": now + self.lease, "attempts": 1}).rows
                    for (inbound_id,) in taken:
                        self._claims[int(inbound_id)] = 1
                    claimed = sorted([*claimed, *(int(row[0]) for row in taken)])
                if within is None:
                    session.commit()
            if within is None:
                self._hold_claimed(claimed)
            if claimed or only_id is not None:
                return claimed

    def _hold_claimed(self, inbound_ids: list[int]) -> None:
        """Have the heartbeat renew the leases of messages whose claim is committed."""
        if self.heartbeat is not None:
            self.heartbeat.hold(inbound_ids)

    def _forget_claimed(self, inbound_ids: list[int]) -> None:
        """Let go of the fencing tokens of a claim that was rolled back."""
        for inbound_id in inbound_ids:
            self._claims.pop(inbound_id, None)

    def process(self, inbound_id: int) -> Outcome:
        """Run the pipeline on one claimed message and commit its ticket, or record the failure."""
        return self.process_batch([inbound_id])[0]

    def process_batch(self, inbound_ids: list[int], rules: Rules | None = None) -> list[Outcome]:
        """Run the pipeline on claimed messages in one transaction.

        A message whose processing raises is rolled back alone (see `_transaction`) and left
        for a later try (or quarantined on its last attempt); its batch-mates are committed.
        If the commit itself fails, what is left of the batch is given back, each message to
        be retried alone.
        On SQLite, when intake waits to store mail, the transaction commits after the
        current message and intake goes first; the rest of the batch follows in the next.
        """
        return self._process_batch(inbound_ids, rules)[0]

    def _process_batch(self, inbound_ids: list[int], rules: Rules | None = None,
                       claim_next: Callable[[Session], list[int]] | None = None
                       ) -> tuple[list[Outcome], list[int]]:
        """`process_batch`, and `claim_next(session)` (the next batch's claim) in the
        transaction that commits the batch's last message, in a savepoint of its own.

        Where several processes take turns at one SQLite database, a process that claims as
        it leaves its turn reads its next batch while another holds the turn, instead of
        waiting a whole turn for its claim and then leaving the lock idle while it reads.
        Committed with the batch, the claim costs no commit (no sync to disk) of its own.
        The log events of a turn's messages are written after the turn.
        """
        rules = rules if rules is not None else self.rules()
        identity = identity_of(rules, self.mail_domain)
        turns = write_turns(self.engine)
        read = self._read_ahead(inbound_ids, rules, identity)
        self._wait_for_originals(inbound_ids, read)
        outcomes: list[Outcome] = []
        following: list[int] = []
        while len(outcomes) < len(inbound_ids):
            remaining = inbound_ids[len(outcomes):]
            notes: list[_Note] = []
            try:
                with turns.turn():
                    done, following = self._transaction(remaining, read, rules, identity,
                                                        turns, notes=notes,
                                                        claim_next=claim_next)
            finally:
                _log_outcomes(notes)
            outcomes += done
            finished = [outcome.inbound_id for outcome in done]
            for inbound_id in finished:
                self._claims.pop(inbound_id, None)
            if self.heartbeat is not None:
                self.heartbeat.drop(finished)
            if len(outcomes) < len(inbound_ids):
                turns.let_urgent_go_first()
        return outcomes, following

    def _claim_next(self, claim_next: Callable[[Session], list[int]], session: Session
                    ) -> list[int]:
        """`claim_next(session)` in a savepoint, or nothing if it fails: the batch is still
        committed, and the pass's next claim, in a turn of its own, meets the failure again
        where its caller hears of it."""
        held = set(self._claims)
        try:
            with _savepoint(session, "maild_claim"):
                return claim_next(session)
        except Exception as error:
            self._forget_claimed([inbound_id for inbound_id in self._claims
                                  if inbound_id not in held])
            log.warning("processing.next_claim_failed",
                        error=f"{type(error).__name__}: {error}"[:500],
                        effect="claimed in a turn of its own instead")
            return []

    def _read_ahead(self, inbound_ids: list[int], rules: Rules, identity: Identity
                    ) -> dict[int, _Read]:
        """The batch's rows, in one query, and its first messages parsed and read
        (`maild.reading`), without a write lock.

        Messages are parsed in order until `PARSE_AHEAD_BYTES`; a message too large for the
        batch query, or one whose parser fails other than by finding it unreadable, is read
        and parsed in its turn, where its failure is recorded.
        """
        with self.engine.connect() as connection:
            connection.begin()  # as Connection.execute would; rolled back on close
            rows = _BATCH_ROWS.run(connection, {"inbound_ids": inbound_ids}).rows
        read = {int(row.id): _Read(row) for row in rows}
        budget = PARSE_AHEAD_BYTES
        for inbound_id in inbound_ids:
            found = read.get(inbound_id)
            if found is None or found.row.raw is None or len(found.row.raw) > budget:
                continue
            budget -= len(found.row.raw)
            # Another failure of the parser comes again in the message's turn: recorded there.
            with contextlib.suppress(Exception):
                read[inbound_id] = parsed = _parsed(found.row, found.row.raw, rules, identity)
                if self.reads_ahead and parsed.reading is not None:
                    parsed.reading.work_out(self.numbering)
        return read

    def _wait_for_originals(self, inbound_ids: list[int], read: dict[int, _Read]) -> None:
        """Wait (up to `EARLIER_WAIT` seconds) while a message the batch answers is being
        processed by another process, so that the reply finds the ticket it opens.

        Several processes work through the waiting mail side by side, a batch each; a reply
        and its original a batch apart can otherwise be decided in the wrong order. A process
        that died holding the original is not waited for beyond the bound (nor once its
        lease has run out); the reply is then decided as it would be without its original.
        An original this processor holds itself is never waited for. The wait is a courtesy
        to the thread: should its query fail, the batch goes on without it.
        """
        named = sorted({message_id for found in read.values() if found.reading is not None
                        for message_id in named_ids(found.reading.mail)[:ORIGINALS_LOOKED_FOR]})
        if not named:
            return
        deadline = time.monotonic() + EARLIER_WAIT
        pause = 0.002
        while True:
            try:
                with self.engine.connect() as connection:
                    connection.begin()  # as Connection.execute would; rolled back on close
                    busy = _NAMED_IN_FLIGHT.run(connection, {
                        "now": self.clock(), "named": named,
                        "mine": sorted({*inbound_ids, *self._claims})}).first()
            except Exception as error:
                log.warning("processing.originals_not_looked_for",
                            error=f"{type(error).__name__}: {error}"[:500],
                            effect="the batch's replies are decided without waiting")
                return
            if busy is None:
                return
            if time.monotonic() >= deadline:
                log.warning("processing.original_still_in_flight", original=busy.id,
                            waited_s=EARLIER_WAIT, batch=inbound_ids[:1],
                            effect="a reply in this batch is decided without it")
                return
            time.sleep(pause)
            pause = min(pause * 2, 0.05)

    def _transaction(self, inbound_ids: list[int], read: dict[int, _Read], rules: Rules,
                     identity: Identity, turns: WriteTurns, *, notes: list[_Note],
                     claim_next: Callable[[Session], list[int]] | None = None
                     ) -> tuple[list[Outcome], list[int]]:
        """Process `inbound_ids` in order in one transaction, until done or intake waits;
        the outcomes, and the messages `claim_next` claimed in the same transaction once
        all were done (none while intake waits: it goes first).

        The messages are first processed without a savepoint each: a savepoint makes the
        database keep a copy of every page the message changes (on SQLite, dozens of pages
        a message, written to a temporary file), only to undo a message that fails. Should
        one fail, the transaction is rolled back and the batch done again with a savepoint
        around each message, so that the failing one is rolled back alone and recorded.
        The log event of each committed message is added to `notes`, with its inbound id.
        """
        now = self.clock()
        try:
            return self._in_one_transaction(inbound_ids, read, rules, identity, turns,
                                            notes=notes, now=now, guarded=False,
                                            claim_next=claim_next)
        except _MessageFailed as failed:
            cause = failed.__cause__
            log.info("processing.batch_redone", inbound_id=failed.inbound_id,
                     message_id=failed.message_id,
                     error=f"{type(cause).__name__}: {cause}"[:500],
                     effect="the batch is processed again with a savepoint per message")
            return self._in_one_transaction(inbound_ids, read, rules, identity, turns,
                                            notes=notes, now=now, guarded=True,
                                            claim_next=claim_next)

    def _in_one_transaction(self, inbound_ids: list[int], read: dict[int, _Read],
                            rules: Rules, identity: Identity, turns: WriteTurns, *,
                            notes: list[_Note], now: datetime, guarded: bool,
                            claim_next: Callable[[Session], list[int]] | None
                            ) -> tuple[list[Outcome], list[int]]:
        """`_transaction`'s one try: `guarded`, each message in a savepoint of its own;
        otherwise the first message that raises rolls the whole transaction back and raises
        `_MessageFailed`. The reads of the messages committed are let go of in `read`; the
        others stay there for the next try or turn."""
        outcomes: list[Outcome] = []
        said: list[tuple[str, dict[str, Any]]] = []
        following: list[int] = []
        try:
            with Session(self.engine) as session:
                # Acknowledgement accounting for the whole batch, before any write (see
                # `maild.respond.accounting`): on SQLite this opens the transaction with the
                # write lock, so the savepoints below nest inside it instead of committing on
                # release. The claims' leases are the heartbeat's to renew.
                hold_ack_accounting(session)
                for inbound_id in inbound_ids:
                    found = read.get(inbound_id)
                    if guarded:
                        outcome, note = self._guarded_one(session, found, inbound_id, rules,
                                                          identity=identity, now=now)
                    else:
                        try:
                            outcome, note = self._process_one(session, found, inbound_id,
                                                              rules, identity=identity, now=now)
                            session.flush()  # should an ORM object have been added after all
                        except Exception as error:
                            message_id = found.row.message_id if found is not None else None
                            raise _MessageFailed(inbound_id, message_id) from error
                    outcomes.append(outcome)
                    said.append(note)
                    if turns.wanted():
                        break
                else:  # every message done, and intake does not wait: claim the next ones
                    if claim_next is not None and not turns.wanted():
                        following = self._claim_next(claim_next, session)
                session.commit()
            for outcome in outcomes:
                read.pop(outcome.inbound_id, None)
        except _MessageFailed:
            raise  # rolled back as the session closed; the caller tries again, guarded
        except Exception:
            self._forget_claimed(following)
            self.release(inbound_ids)
            raise
        self._hold_claimed(following)
        for (event, fields), outcome in zip(said, outcomes, strict=True):
            level = ("info" if outcome.state == InboundState.PROCESSED
                     else "warning" if outcome.kind == "unparseable"
                     or outcome.state == "claim_lost" else "error")
            notes.append(_Note(outcome.inbound_id, level, event, fields))
        return outcomes, following

    def _guarded_one(self, session: Session, found: _Read | None, inbound_id: int,
                     rules: Rules, *, identity: Identity, now: datetime
                     ) -> tuple[Outcome, tuple[str, dict[str, Any]]]:
        """`_process_one` in a savepoint: a message that raises is rolled back alone and its
        failure recorded (retried later, or quarantined on its last attempt)."""
        try:
            with _savepoint(session):
                return self._process_one(session, found, inbound_id, rules,
                                         identity=identity, now=now)
        except ClaimLost as lost:
            return (Outcome(inbound_id, "claim_lost", error=str(lost)),
                    ("inbound.claim_lost", {"reason": str(lost)}))
        except Exception as error:
            return self._record_failure(session, inbound_id, error)

    def _record_failure(self, session: Session, inbound_id: int, error: Exception
                        ) -> tuple[Outcome, tuple[str, dict[str, Any]]]:
        """Note a failed try on the message (its savepoint is already rolled back)."""
        summary = f"{type(error).__name__}: {error}"[:500]
        detail = traceback.format_exc(limit=8)[-4000:]
        connection = session.connection()
        attempts, message_id = _ATTEMPTS.run(connection, {"inbound_id": inbound_id}).one()
        final = attempts >= self.max_attempts
        state = InboundState.QUARANTINED if final else InboundState.RECEIVED
        last_error = f"{summary}\n{detail}"
        if final:
            last_error = f"processing failed {attempts} times; last: {last_error}"
        _UPDATE.run(connection, {"inbound_id": inbound_id, "state": state,
                                 "claimed_until": None, "last_error": last_error})
        event = "inbound.quarantined" if final else "inbound.retry_later"
        return (Outcome(inbound_id, state, error=summary),
                (event, {"error": summary, "attempts": attempts, "message_id": message_id}))

    def _process_one(self, session: Session, read: _Read | None, inbound_id: int,
                     rules: Rules, *, identity: Identity, now: datetime
                     ) -> tuple[Outcome, tuple[str, dict[str, Any]]]:
        """Parse (unless read ahead), decide and apply one message, and mark it processed."""
        assert read is not None, f"inbound {inbound_id} is not stored"
        row = read.row
        connection = session.connection()
        raw: bytes | None = row.raw
        envelope = read.reading.envelope if read.reading is not None else _envelope(row)
        try:
            if read.unparseable is not None:
                raise read.unparseable
            if read.reading is not None:
                mail = read.reading.mail
            elif raw is None and in_pieces(connection):
                mail = _parse_in_pieces(connection, inbound_id)
            else:
                raw = raw if raw is not None else _read_raw(connection, inbound_id)
                mail = parse_mail(raw)
        except UnparseableMail as error:
            decision = unparseable_decision(str(error), envelope, rules)
            _UPDATE.run(connection, {
                "inbound_id": inbound_id, "state": InboundState.QUARANTINED,
                "kind": "unparseable", "decision": decision.to_json(), "last_error": str(error),
                "claimed_until": None, "processed_at": now})
            return (Outcome(inbound_id, InboundState.QUARANTINED, kind="unparseable",
                            error=str(error)),
                    ("inbound.unparseable", {"message_id": row.message_id,
                                             "reason": str(error)}))
        # The bytes are held by `stored` alone from here, which lets them go once the team
        # copy carries them (a large message is then not in memory twice).
        # A message parsed in pieces is read whole only now, once its parse is let go of.
        stored = StoredMessage(inbound_id, row.received_at,
                               raw if raw is not None else _read_raw(connection, inbound_id))
        del raw
        reading = read.reading or Reading(mail, envelope, rules, identity)
        decision = decide_reading(
            reading, lookup=DatabaseTickets(session, accounting=False),  # held: _transaction
            numbering=self.numbering, limits=self.limits, reopen_within=self.reopen_within)
        applied = apply_decision(session, stored, mail,
                                 decision, rules=rules, numbering=self.numbering,
                                 domain=self.domain(rules), now=now)
        claimed = self._claims.get(inbound_id)
        record: dict[str, Any] | SerializedJson = decision.to_json()
        if applied.decision_json is not None and applied.decision == record:
            record = applied.decision_json  # the ticket's, unchanged since: not serialised again
        written = (_PROCESSED if claimed is None else _PROCESSED_FENCED).run(connection, {
            "inbound_id": inbound_id, "claimed": claimed, "state": InboundState.PROCESSED,
            "kind": decision.kind, "decision": record, "claimed_until": None,
            "processed_at": now, "last_error": None,
            "ticket_id": applied.ticket_id if applied.ticket_id is not None else row.ticket_id})
        if written.rowcount != 1:
            raise ClaimLost(f"inbound {inbound_id} was claimed again by another processor "
                            "(this one's lease ran out): its work here is rolled back")
        return (Outcome(inbound_id, InboundState.PROCESSED, kind=decision.kind,
                        ticket=applied.ticket),
                ("inbound.processed", {
                    "message_id": row.message_id, "kind": decision.kind,
                    "ticket": applied.ticket, "customer": decision.customer,
                    "queue": decision.queue, "ack": decision.ack,
                    "ack_reason": decision.ack_reason}))

    def run_pending(self, limit: int | None = None,
                    progress: Callable[[Outcome], None] | None = None,
                    stop: Callable[[], bool] | None = None) -> Counter[str]:
        """One pass over the waiting messages (each tried at most once); counts outcomes by state.

        Messages are claimed and committed in batches of `batch_size`; the rules are read
        once per batch. A message that fails is left for the next pass, so three failures
        take three passes.
        """
        counts: Counter[str] = Counter()
        done = 0
        cursor = 0
        batch: list[int] = []
        exhausted = False  # the last claim found nothing waiting

        def wanted(ahead: int = 0) -> int:
            """How many messages the pass may claim next, with `ahead` still to be counted
            as done (0: it stops)."""
            if (limit is not None and done + ahead >= limit) or (stop is not None and stop()):
                return 0
            return self.batch_size if limit is None else min(self.batch_size,
                                                             limit - done - ahead)

        def claim_next(within: Session) -> list[int]:
            """The next batch, claimed in the transaction that commits this one (`batch`);
            none if the pass stops, or if the rules are broken now (the next batch's reading
            raises that)."""
            nonlocal exhausted
            size = wanted(ahead=len(batch))
            if not size:
                return []
            try:
                self.rules()
            except Exception:
                return []
            claimed = self.claim_batch(after_id=cursor, size=size, within=within)
            exhausted = not claimed
            return claimed

        while not exhausted:
            if batch:
                try:
                    rules = self.rules()
                except BaseException:
                    self.release(batch)  # claimed, never tried: given back whole
                    raise
            else:
                size = wanted()
                if not size:
                    break
                rules = self.rules()  # broken rules stop here, before any message is claimed
                batch = self.claim_batch(after_id=cursor, size=size)
                if not batch:
                    break
            cursor = batch[-1]
            outcomes, batch = self._process_batch(batch, rules, claim_next)
            for outcome in outcomes:
                done += 1
                count_outcome(counts, outcome.state, outcome.kind)
                if progress is not None:
                    progress(outcome)
        return counts

    def release(self, inbound_ids: list[int]) -> None:
        """Give leased, unprocessed messages back for the next pass."""
        with write_turns(self.engine).turn(), Session(self.engine) as session:
            session.execute(update(Inbound).where(
                col(Inbound.id).in_(inbound_ids),
                col(Inbound.state) == InboundState.PROCESSING,
            ).values(state=InboundState.RECEIVED, claimed_until=None))
            session.commit()
        if self.heartbeat is not None:
            self.heartbeat.drop(inbound_ids)

    def process_now(self, inbound_id: int) -> Outcome | None:
        """Claim and process one message at once; None when it is not waiting."""
        self.rules()  # broken rules stop here, before the message is claimed
        if self.claim(only_id=inbound_id) is None:
            return None
        return self.process(inbound_id)
