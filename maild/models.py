"""The database tables: inbound mail, tickets, their messages, the outbox, counters.

The same schema runs on SQLite and PostgreSQL. Times are stored in UTC and
always come back time-zone aware.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    ForeignKey,
    Integer,
    LargeBinary,
    Table,
    Text,
    TypeDecorator,
)
from sqlalchemy.engine import Dialect
from sqlmodel import Field, SQLModel


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored as UTC and read back with tzinfo=UTC on every database."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def bind_processor(self, dialect: Dialect) -> Callable[[Any], Any] | None:
        """`process_bind_param` and then SQLite's text form, as one function on SQLite.

        SQLite stores a timestamp as text; SQLAlchemy builds it from a dict of the seven
        fields after `process_bind_param`'s conversion, which costs more than the rest of
        a row's parameters on the processing path. `_sqlite_utc_text` writes the same
        text from the fields in order, once per moment.
        """
        composed = super().bind_processor(dialect)
        stored = dialect.type_descriptor(self.impl_instance)
        if dialect.name != "sqlite" or getattr(stored, "_storage_format", None) \
                != _SQLITE_TIMESTAMP:
            return composed
        return _sqlite_utc_text

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


# SQLAlchemy's text form of a SQLite timestamp (`sqlite.DATETIME`).
_SQLITE_TIMESTAMP = ("%(year)04d-%(month)02d-%(day)02d "
                     "%(hour)02d:%(minute)02d:%(second)02d.%(microsecond)06d")


class _UTCText:
    """A UTC timestamp's text on SQLite, `None` for None; refuses a naive datetime.

    It remembers the last few moments written: most timestamps of a batch are its one
    `now` or a message's arrival, and formatting one costs more than the rest of its
    row's parameters. Holding those moments keeps their identities from being reused,
    and a datetime never changes.
    """

    __slots__ = ("_recent",)
    REMEMBERED = 4

    def __init__(self) -> None:
        self._recent: tuple[tuple[datetime, str], ...] = ()

    def __call__(self, value: datetime | None) -> str | None:
        if value is None:
            return None
        recent = self._recent
        for moment, text in recent:
            if moment is value:
                return text
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        text = value.astimezone(UTC).isoformat(" ", "microseconds")[:26]
        self._recent = ((value, text), *recent[:self.REMEMBERED - 1])
        return text


_sqlite_utc_text = _UTCText()


def utcnow() -> datetime:
    """The current time, time-zone aware, in UTC."""
    return datetime.now(UTC)


def table_of(model: type[SQLModel]) -> Table:
    """The table of a table model, for statements that bypass the ORM's unit of work."""
    return cast(Table, model.__table__)  # type: ignore[attr-defined]


def _ts(nullable: bool = True, index: bool = False) -> Any:
    return Field(default=None, sa_column=Column(UTCDateTime(), nullable=nullable, index=index))


class InboundState:
    """The processing states of an inbound message."""

    RECEIVED = "received"        # stored, waiting to be processed
    PROCESSING = "processing"    # claimed by a worker until `claimed_until`
    PROCESSED = "processed"      # decision made and applied
    QUARANTINED = "quarantined"  # kept aside with the reason in `last_error`

    ALL = (RECEIVED, PROCESSING, PROCESSED, QUARANTINED)


class Inbound(SQLModel, table=True):
    """One message as received: raw bytes, envelope and processing state.

    On SQLite the bytes are kept in `InboundRaw` and `raw` is left empty
    (`maild.bytes_apart` says why and reads either).
    """

    __tablename__ = "inbound"

    id: int | None = Field(default=None, primary_key=True)
    received_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False, index=True))
    transport: str = Field(max_length=16)
    source: str | None = Field(default=None, sa_column=Column(Text))
    envelope_sender: str | None = Field(default=None, max_length=512)
    envelope_recipients: list[str] = Field(default_factory=list, sa_column=Column(JSON))
    raw: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    size: int
    idempotency_key: str = Field(max_length=64, unique=True)
    message_id: str | None = Field(default=None, max_length=998, index=True)
    state: str = Field(default=InboundState.RECEIVED, max_length=16, index=True)
    attempts: int = 0
    claimed_until: datetime | None = _ts()
    processed_at: datetime | None = _ts()
    last_error: str | None = Field(default=None, sa_column=Column(Text))
    duplicates: int = 0
    kind: str | None = Field(default=None, max_length=16)
    ticket_id: int | None = Field(default=None, foreign_key="ticket.id", index=True)
    decision: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))


class InboundRaw(SQLModel, table=True):
    """The bytes of an inbound message exactly as received, on SQLite: written once, with its row.

    Kept apart from `Inbound`, whose row changes as the message is claimed and processed
    (see `maild.bytes_apart`).
    """

    __tablename__ = "inbound_raw"

    # INTEGER PRIMARY KEY: on SQLite the inbound id is the rowid, which blob I/O opens.
    inbound_id: int = Field(sa_column=Column(Integer, ForeignKey("inbound.id"),
                                             primary_key=True, autoincrement=False))
    raw: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class Ticket(SQLModel, table=True):
    """A support case with its number, routing and deadlines."""

    __tablename__ = "ticket"

    id: int | None = Field(default=None, primary_key=True)
    number: str = Field(max_length=32, unique=True)
    subject: str = Field(sa_column=Column(Text, nullable=False))
    requester: str | None = Field(default=None, max_length=512, index=True)
    requester_name: str | None = Field(default=None, max_length=512)
    customer: str | None = Field(default=None, max_length=128, index=True)
    policy: str | None = Field(default=None, max_length=128)
    queue: str | None = Field(default=None, max_length=128, index=True)
    priority: str | None = Field(default=None, max_length=32)
    private: bool = False
    language: str = Field(default="sv", max_length=8)
    status: str = Field(default="new", max_length=32, index=True)
    assignee: str | None = Field(default=None, max_length=512)
    refers_to: str | None = Field(default=None, max_length=32)
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False, index=True))
    updated_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    response_due: datetime | None = _ts(index=True)
    resolution_due: datetime | None = _ts()
    action_due: datetime | None = _ts()
    first_response_at: datetime | None = _ts()
    response_breached_at: datetime | None = _ts()
    resolution_breached_at: datetime | None = _ts()
    action_breached_at: datetime | None = _ts()
    warned_at: datetime | None = _ts()
    escalated_at: datetime | None = _ts()
    closed_at: datetime | None = _ts()
    missing: list[str] | None = Field(default=None, sa_column=Column(JSON))
    participants: list[str] = Field(default_factory=list, sa_column=Column(JSON))
    decision: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))


class TicketMessage(SQLModel, table=True):
    """A message on a ticket: the customer's mail, or what maild sent."""

    __tablename__ = "ticket_message"

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="ticket.id", index=True)
    inbound_id: int | None = Field(default=None, foreign_key="inbound.id", unique=True)
    outbox_id: int | None = Field(default=None, foreign_key="outbox.id")
    direction: str = Field(max_length=8)       # "in" or "out"
    role: str = Field(max_length=16)           # "opening", "followup", "ack", ...
    message_id: str | None = Field(default=None, max_length=998, index=True)
    sender: str | None = Field(default=None, max_length=512, index=True)
    subject: str | None = Field(default=None, sa_column=Column(Text))
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    body_digest: str | None = Field(default=None, max_length=64, index=True)


class OutboxState:
    """The delivery states of an outbox item."""

    QUEUED = "queued"        # waiting for its next attempt (`next_attempt_at`, None: now)
    SENDING = "sending"      # claimed by one sender until `claimed_until`
    SENT = "sent"
    FAILED = "failed"        # will not be tried again unless an operator retries it
    BOUNCED = "bounced"
    CANCELLED = "cancelled"  # an operator withdrew it before it was sent

    ALL = (QUEUED, SENDING, SENT, FAILED, BOUNCED, CANCELLED)


class Outbox(SQLModel, table=True):
    """A composed message waiting to be delivered, with its delivery history.

    On SQLite its bytes are kept in `OutboxRaw` and `raw` is left empty
    (`maild.bytes_apart` says why and reads either).
    """

    __tablename__ = "outbox"

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int | None = Field(default=None, foreign_key="ticket.id", index=True)
    inbound_id: int | None = Field(default=None, foreign_key="inbound.id")
    purpose: str = Field(max_length=16)       # "ack", ...
    envelope_sender: str = Field(max_length=512)
    recipient: str = Field(max_length=512, index=True)
    message_id: str = Field(max_length=998, index=True)
    raw: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    state: str = Field(default=OutboxState.QUEUED, max_length=16, index=True)
    attempts: int = 0
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    next_attempt_at: datetime | None = _ts(index=True)
    sent_at: datetime | None = _ts()
    last_error: str | None = Field(default=None, sa_column=Column(Text))
    bounce_token: str | None = Field(default=None, max_length=32, index=True)
    # What acknowledgement limits count (maild.respond.policy.ack_keys); set on acks only.
    mailbox: str | None = Field(default=None, max_length=512, index=True)
    recipient_domain: str | None = Field(default=None, max_length=255, index=True)
    sender_domain: str | None = Field(default=None, max_length=255, index=True)
    history: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON))
    claimed_until: datetime | None = _ts()
    claim_token: str | None = Field(default=None, max_length=32)
    # Committed by the claim's holder just before it sends the final "." of DATA: an
    # expired claim carrying it is recorded as sent, not sent again (maild.respond.lease).
    committing_at: datetime | None = _ts()



class OutboxRaw(SQLModel, table=True):
    """The bytes of an outbox item as they are sent, on SQLite: written once, with its row.

    Kept apart from `Outbox`, whose row changes as the item is claimed and recorded
    (see `maild.bytes_apart`). A team copy that carries its original as it was
    received refers to it: `raw` holds the bytes before it, `tail` those after.
    """

    __tablename__ = "outbox_raw"

    # INTEGER PRIMARY KEY: on SQLite the outbox id is the rowid, which blob I/O opens.
    outbox_id: int = Field(sa_column=Column(Integer, ForeignKey("outbox.id"),
                                            primary_key=True, autoincrement=False))
    raw: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    original_id: int | None = Field(default=None, sa_column=Column(
        Integer, ForeignKey("inbound.id"), nullable=True))
    tail: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))

class Suppression(SQLModel, table=True):
    """An address that bounced permanently: no acknowledgement goes there for a while."""

    __tablename__ = "suppression"

    address: str = Field(primary_key=True, max_length=512)
    bounced_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    reason: str = Field(sa_column=Column(Text, nullable=False))
    inbound_id: int | None = Field(default=None, foreign_key="inbound.id")


class TicketCounter(SQLModel, table=True):
    """The last ticket sequence number handed out in one scope (a year)."""

    __tablename__ = "ticket_counter"

    scope: str = Field(primary_key=True, max_length=16)
    last: int = 0


class ImapCursor(SQLModel, table=True):
    """How far maild has read one IMAP folder: the UIDVALIDITY and the last UID stored."""

    __tablename__ = "imap_cursor"

    account: str = Field(primary_key=True, max_length=128)
    folder: str = Field(primary_key=True, max_length=512)
    uidvalidity: int = Field(sa_column=Column(BigInteger, nullable=False))
    last_uid: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    updated_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class Lease(SQLModel, table=True):
    """A named lease: which maild instance may do one job (poll an IMAP folder) until when."""

    __tablename__ = "lease"

    name: str = Field(primary_key=True, max_length=640)
    holder: str = Field(max_length=255)
    expires_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    renewed_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class TicketStatus:
    """The life of a ticket."""

    NEW = "new"                            # opened, nobody has looked at it yet
    OPEN = "open"                          # someone works on it
    WAITING = "waiting-on-customer"        # missing information asked for
    ANSWERED = "answered"                  # staff answered; the customer's turn
    CLOSED = "closed"

    ALL = (NEW, OPEN, WAITING, ANSWERED, CLOSED)


class TicketEvent(SQLModel, table=True):
    """One change to a ticket: who or what did it, when, and what changed (the audit trail)."""

    __tablename__ = "ticket_event"

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="ticket.id", index=True)
    at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    actor: str = Field(max_length=512)
    kind: str = Field(max_length=32)
    detail: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))


class WebUser(SQLModel, table=True):
    """A person who logs in to the web: an agent of some queues, or an administrator."""

    __tablename__ = "web_user"

    name: str = Field(primary_key=True, max_length=128)
    role: str = Field(max_length=16)                 # "agent" or "admin"
    queues: list[str] = Field(default_factory=list, sa_column=Column(JSON))
    password_hash: str | None = Field(default=None, sa_column=Column(Text))
    language: str = Field(default="sv", max_length=8)
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    disabled: bool = False


class WebSession(SQLModel, table=True):
    """A logged-in browser: the hash of its cookie token, its CSRF token and its expiry."""

    __tablename__ = "web_session"

    token_hash: str = Field(primary_key=True, max_length=64)
    user: str = Field(max_length=128, index=True)
    csrf: str = Field(max_length=64)
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    expires_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False, index=True))


class LoginFailure(SQLModel, table=True):
    """A refused log-in, counted to slow down password guessing (shared by all instances)."""

    __tablename__ = "login_failure"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False, index=True))
    user: str = Field(max_length=128, index=True)
    address: str = Field(max_length=64, index=True)


class AdminEvent(SQLModel, table=True):
    """One change an administrator made through the web (rules edits): who, when, what."""

    __tablename__ = "admin_event"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False, index=True))
    actor: str = Field(max_length=128)
    action: str = Field(max_length=32)
    target: str = Field(max_length=256)
    detail: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
