"""The lookups of a decision, answered from the database: tickets by number and by
Message-ID, what maild sent, and the history the acknowledgement policy counts."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import bindparam, case, func, or_, select
from sqlmodel import Session, col

from maild.models import Outbox, Suppression, Ticket, TicketMessage, table_of
from maild.prepared import Prepared
from maild.respond.accounting import hold_ack_accounting
from maild.respond.bounces import OutboxRef
from maild.tickets.correlate import MessageMatch, TicketRef
from maild.tickets.rows import AnyRow

_TICKET = table_of(Ticket)
_OUTBOX = table_of(Outbox)
_MESSAGE = table_of(TicketMessage)


def ticket_ref(row: AnyRow) -> TicketRef:
    """The correlation view of a ticket row (selected with `_REF_COLUMNS`)."""
    return TicketRef(
        id=row.id, number=row.number, customer=row.customer, policy=row.policy,
        queue=row.queue, priority=row.priority, language=row.language,
        requester=row.requester, participants=tuple(row.participants or ()),
        private=row.private, status=row.status, closed_at=row.closed_at,
    )


# Correlation's questions, built once: they run for every message.
_REF_COLUMNS = (_TICKET.c.id, _TICKET.c.number, _TICKET.c.customer, _TICKET.c.policy,
                _TICKET.c.queue, _TICKET.c.priority, _TICKET.c.language, _TICKET.c.requester,
                _TICKET.c.participants, _TICKET.c.private, _TICKET.c.status,
                _TICKET.c.closed_at)
_TICKET_BY_NUMBER = Prepared(
    select(*_REF_COLUMNS).where(_TICKET.c.number == bindparam("number")).limit(1))
_TICKET_BY_ID = Prepared(select(*_REF_COLUMNS).where(_TICKET.c.id == bindparam("ticket_id")))
_MESSAGES_BY_ID = Prepared(select(_MESSAGE.c.message_id, _MESSAGE.c.ticket_id).where(
    _MESSAGE.c.message_id.in_(bindparam("ids", expanding=True))))
_SENT_BY_ID = Prepared(select(_OUTBOX.c.message_id, _OUTBOX.c.ticket_id).where(
    _OUTBOX.c.message_id.in_(bindparam("ids", expanding=True))))
_OUTBOX_REF = (select(_OUTBOX.c.id, _OUTBOX.c.ticket_id, _OUTBOX.c.recipient, _TICKET.c.number)
               .select_from(_OUTBOX.outerjoin(_TICKET, _TICKET.c.id == _OUTBOX.c.ticket_id)))
_OUTBOX_BY_TOKEN = Prepared(
    _OUTBOX_REF.where(_OUTBOX.c.bounce_token == bindparam("token")).limit(1))
_OUTBOX_BY_ID = Prepared(_OUTBOX_REF.where(
    _OUTBOX.c.message_id.in_(bindparam("ids", expanding=True))).limit(1))

# The acknowledgement policy's questions, built once: they run for every new ticket. A
# count answers for both of its windows at once: the recent one is within the other.
_COUNTS = (func.count(case((col(Outbox.created_at) >= bindparam("recent"), 1))), func.count())
_ACKS_TO_MAILBOX = Prepared(select(*_COUNTS).select_from(Outbox).where(
    col(Outbox.mailbox) == bindparam("key"), col(Outbox.purpose) == "ack",
    col(Outbox.created_at) >= bindparam("since")))
_ACKS_FOR_DOMAIN = Prepared(select(*_COUNTS).select_from(Outbox).where(
    or_(col(Outbox.recipient_domain) == bindparam("domain"),
        col(Outbox.sender_domain) == bindparam("domain")),
    col(Outbox.purpose) == "ack", col(Outbox.created_at) >= bindparam("since")))
_SAME_TEXT = Prepared(
    select(col(Ticket.number))
    .join(TicketMessage, col(TicketMessage.ticket_id) == col(Ticket.id))
    .join(Outbox, col(Outbox.ticket_id) == col(Ticket.id))
    .where(col(TicketMessage.role) == "opening",
           col(TicketMessage.body_digest) == bindparam("digest"),
           col(TicketMessage.created_at) >= bindparam("since"), col(Outbox.purpose) == "ack",
           or_(col(TicketMessage.sender) == bindparam("sender"),
               col(Outbox.mailbox) == bindparam("key")))
    .limit(1))
_SUPPRESSION = Prepared(select(col(Suppression.bounced_at), col(Suppression.reason)).where(
    col(Suppression.address) == bindparam("address")))


class DatabaseTickets:
    """The ticket lookup of correlation, answered from the database.

    `accounting`: counting acknowledgements takes the accounting lock, because the decision
    will be applied in this session's transaction. False for a dry run such as `maild route`,
    and for a processing batch, which holds the lock from its start.
    """

    def __init__(self, session: Session, *, accounting: bool = True) -> None:
        self.session = session
        self.accounting = accounting
        session.flush()  # the counts below read the connection: they see all written so far
        self.connection = session.connection()

    def by_number(self, number: str) -> TicketRef | None:
        """The ticket with `number`, if any."""
        row = _TICKET_BY_NUMBER.run(self.connection, {"number": number.upper()}).first()
        return ticket_ref(row) if row else None

    def by_message_ids(self, message_ids: Sequence[str]) -> MessageMatch | None:
        """The ticket that holds, or sent, the first of `message_ids` that maild knows."""
        if not message_ids:
            return None
        wanted = list(dict.fromkeys(message_ids))[:50]
        found: dict[str, tuple[int, bool]] = {}
        for row in _MESSAGES_BY_ID.run(self.connection, {"ids": wanted}).rows:
            found.setdefault(row[0], (row[1], False))
        for row in _SENT_BY_ID.run(self.connection, {"ids": wanted}).rows:
            if row[1] is not None:
                found[row[0]] = (row[1], True)
        for message_id in wanted:
            if message_id in found:
                ticket_id, ours = found[message_id]
                ticket = _TICKET_BY_ID.run(self.connection, {"ticket_id": ticket_id}).first()
                if ticket is not None:
                    return MessageMatch(ticket_ref(ticket), message_id, ours)
        return None

    def acks_to_mailbox(self, mailbox: str, recent: datetime, since: datetime
                        ) -> tuple[int, int]:
        """Acknowledgements queued or sent to mailbox key `mailbox` since `recent` and since
        `since`, in one query."""
        return _two_counts(_ACKS_TO_MAILBOX.run(
            self.connection, {"key": mailbox, "recent": recent, "since": since}).first())

    def acks_for_domain(self, domain: str, recent: datetime, since: datetime
                        ) -> tuple[int, int]:
        """Acknowledgements that went to `domain` or answered a sender there, since `recent`
        and since `since`, in one query."""
        return _two_counts(_ACKS_FOR_DOMAIN.run(
            self.connection, {"domain": domain, "recent": recent, "since": since}).first())

    def same_text_acknowledged(self, sender: str, mailbox: str, digest: str,
                               since: datetime) -> str | None:
        """The ticket opened with this text since `since`, by `sender` or acked to `mailbox`."""
        row = _SAME_TEXT.run(self.connection, {
            "digest": digest, "since": since, "sender": sender, "key": mailbox}).first()
        return str(row[0]) if row else None

    def suppressed(self, address: str, since: datetime) -> str | None:
        """The reason `address` bounced permanently since `since`, if it did."""
        row = _SUPPRESSION.run(self.connection, {"address": address.lower()}).first()
        return str(row[1]) if row is not None and row[0] >= since else None

    def hold_accounting(self) -> None:
        """Hold acknowledgement accounting until the session's transaction ends."""
        if self.accounting:
            hold_ack_accounting(self.session)

    def outbox_by_token(self, token: str) -> OutboxRef | None:
        """The outbox item with VERP token `token`."""
        return _outbox_ref(_OUTBOX_BY_TOKEN.run(self.connection, {"token": token}).first())

    def outbox_by_message_ids(self, message_ids: Sequence[str]) -> OutboxRef | None:
        """The outbox item that had one of `message_ids`."""
        return _outbox_ref(_OUTBOX_BY_ID.run(
            self.connection, {"ids": list(message_ids)[:20]}).first())


def _two_counts(row: AnyRow | None) -> tuple[int, int]:
    return (int(row[0] or 0), int(row[1] or 0)) if row is not None else (0, 0)


def _outbox_ref(row: AnyRow | None) -> OutboxRef | None:
    if row is None:
        return None
    return OutboxRef(id=row.id, ticket_id=row.ticket_id, ticket=row.number,
                     recipient=row.recipient)
