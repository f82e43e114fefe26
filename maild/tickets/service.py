"""Applying a decision: ticket, its messages and the acknowledgement in one transaction."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, func, or_, select
from sqlmodel import Session, col

from maild.models import (
    Inbound,
    Outbox,
    OutboxState,
    Suppression,
    Ticket,
    TicketMessage,
    TicketStatus,
)
from maild.parse import ParsedMail
from maild.pipeline import Decision
from maild.respond.accounting import hold_ack_accounting
from maild.respond.ack import compose_ack
from maild.respond.address import UnusableAddress
from maild.respond.bounces import OutboxRef, new_token, verp_address
from maild.respond.policy import ack_keys
from maild.respond.team import compose_team_delivery
from maild.routing.model import Rules
from maild.tickets.correlate import MessageMatch, TicketRef
from maild.tickets.lifecycle import record, set_status
from maild.tickets.numbering import TicketNumbering, allocate_number
from maild.tickets.responses import record_first_response
from maild.tickets.rows import insert_row


def ticket_ref(ticket: Ticket) -> TicketRef:
    """The correlation view of a ticket row."""
    assert ticket.id is not None
    return TicketRef(
        id=ticket.id, number=ticket.number, customer=ticket.customer, policy=ticket.policy,
        queue=ticket.queue, priority=ticket.priority, language=ticket.language,
        requester=ticket.requester, participants=tuple(ticket.participants or ()),
        private=ticket.private, status=ticket.status, closed_at=ticket.closed_at,
    )


# The acknowledgement policy's questions, built once: they run for every new ticket.
_ACKS_TO_MAILBOX = (select(func.count()).select_from(Outbox).where(
    col(Outbox.mailbox) == bindparam("key"), col(Outbox.purpose) == "ack",
    col(Outbox.created_at) >= bindparam("since")))
_ACKS_FOR_DOMAIN = (select(func.count()).select_from(Outbox).where(
    or_(col(Outbox.recipient_domain) == bindparam("domain"),
        col(Outbox.sender_domain) == bindparam("domain")),
    col(Outbox.purpose) == "ack", col(Outbox.created_at) >= bindparam("since")))
_SAME_TEXT = (
    select(col(Ticket.number))
    .join(TicketMessage, col(TicketMessage.ticket_id) == col(Ticket.id))
    .join(Outbox, col(Outbox.ticket_id) == col(Ticket.id))
    .where(col(TicketMessage.role) == "opening",
           col(TicketMessage.body_digest) == bindparam("digest"),
           col(TicketMessage.created_at) >= bindparam("since"), col(Outbox.purpose) == "ack",
           or_(col(TicketMessage.sender) == bindparam("sender"),
               col(Outbox.mailbox) == bindparam("key")))
    .limit(1))
_SUPPRESSION = select(col(Suppression.bounced_at), col(Suppression.reason)).where(
    col(Suppression.address) == bindparam("address"))


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
        ticket = self.session.scalars(
            select(Ticket).where(col(Ticket.number) == number.upper())
        ).first()
        return ticket_ref(ticket) if ticket else None

    def by_message_ids(self, message_ids: Sequence[str]) -> MessageMatch | None:
        """The ticket that holds, or sent, the first of `message_ids` that maild knows."""
        if not message_ids:
            return None
        wanted = list(dict.fromkeys(message_ids))[:50]
        found: dict[str, tuple[int, bool]] = {}
        for row in self.session.execute(
            select(col(TicketMessage.message_id), col(TicketMessage.ticket_id))
            .where(col(TicketMessage.message_id).in_(wanted))
        ):
            found.setdefault(row[0], (row[1], False))
        for row in self.session.execute(
            select(col(Outbox.message_id), col(Outbox.ticket_id))
            .where(col(Outbox.message_id).in_(wanted))
        ):
            if row[1] is not None:
                found[row[0]] = (row[1], True)
        for message_id in wanted:
            if message_id in found:
                ticket_id, ours = found[message_id]
                ticket = self.session.get(Ticket, ticket_id)
                if ticket is not None:
                    return MessageMatch(ticket_ref(ticket), message_id, ours)
        return None

    def acks_to_mailbox(self, mailbox: str, since: datetime) -> int:
        """Acknowledgements queued or sent to mailbox key `mailbox` since `since`."""
        return int(self.connection.execute(
            _ACKS_TO_MAILBOX, {"key": mailbox, "since": since}).scalar() or 0)

    def acks_for_domain(self, domain: str, since: datetime) -> int:
        """Acknowledgements since `since` that went to `domain` or answered a sender there."""
        return int(self.connection.execute(
            _ACKS_FOR_DOMAIN, {"domain": domain, "since": since}).scalar() or 0)

    def same_text_acknowledged(self, sender: str, mailbox: str, digest: str,
                               since: datetime) -> str | None:
        """The ticket opened with this text since `since`, by `sender` or acked to `mailbox`."""
        row = self.connection.execute(_SAME_TEXT, {
            "digest": digest, "since": since, "sender": sender, "key": mailbox}).first()
        return str(row[0]) if row else None

    def suppressed(self, address: str, since: datetime) -> str | None:
        """The reason `address` bounced permanently since `since`, if it did."""
        row = self.connection.execute(_SUPPRESSION, {"address": address.lower()}).first()
        return str(row[1]) if row is not None and row[0] >= since else None

    def hold_accounting(self) -> None:
        """Hold acknowledgement accounting until the session's transaction ends."""
        if self.accounting:
            hold_ack_accounting(self.session)

    def _outbox_ref(self, item: Outbox | None) -> OutboxRef | None:
        if item is None or item.id is None:
            return None
        ticket = self.session.get(Ticket, item.ticket_id) if item.ticket_id else None
        return OutboxRef(id=item.id, ticket_id=item.ticket_id,
                         ticket=ticket.number if ticket else None, recipient=item.recipient)

    def outbox_by_token(self, token: str) -> OutboxRef | None:
        """The outbox item with VERP token `token`."""
        return self._outbox_ref(self.session.scalars(
            select(Outbox).where(col(Outbox.bounce_token) == token)).first())

    def outbox_by_message_ids(self, message_ids: Sequence[str]) -> OutboxRef | None:
        """The outbox item that had one of `message_ids`."""
        return self._outbox_ref(self.session.scalars(
            select(Outbox).where(col(Outbox.message_id).in_(list(message_ids)[:20]))).first())


@dataclass(frozen=True)
class Applied:
    """What applying a decision created."""

    ticket: str | None
    outbox_id: int | None


def _participants(mail: ParsedMail, rules: Rules, existing: Sequence[str],
                  decision: Decision) -> list[str]:
    """Who may write on the ticket: the sender and, from an authenticated sender only, the
    people they addressed (an unauthenticated From could name anyone in Cc)."""
    if not (decision.details.get("trust") or {}).get("trusted"):
        return list(dict.fromkeys([*existing, *([decision.sender] if decision.sender else [])]))
    people = [address.address.lower() for address in
              ((mail.sender,) if mail.sender else ()) + mail.reply_to + mail.cc + mail.to]
    people = [p for p in people if rules.support_address(p) is None]
    return list(dict.fromkeys([*existing, *people]))[:50]


def apply_decision(
    session: Session,
    inbound: Inbound,
    mail: ParsedMail,
    decision: Decision,
    *,
    rules: Rules,
    numbering: TicketNumbering,
    domain: str,
    now: datetime,
) -> Applied:
    """Write what `decision` says inside the caller's transaction; fills in `decision.ticket`."""
    assert inbound.id is not None
    if decision.kind == "bounce" and decision.details.get("bounce_of"):
        return _apply_bounce(session, inbound, mail, decision, now)
    if decision.kind == "followup":
        ticket = session.scalars(select(Ticket).where(
            col(Ticket.number) == decision.ticket)).one()
        ticket.updated_at = now
        staff = bool(decision.details.get("staff"))
        if not staff:
            ticket.participants = _participants(mail, rules, ticket.participants or [],
                                                decision)
        session.add(ticket)
        session.flush()
        assert ticket.id is not None
        actor = decision.sender or "(unknown sender)"
        if staff:
            if not record_first_response(session, ticket, at=inbound.received_at,
                                         actor=f"staff {actor}", inbound=inbound.id):
                record(session, ticket, actor=f"staff {actor}", kind="response", at=now,
                       inbound=inbound.id)
            set_status(session, ticket, TicketStatus.ANSWERED, actor=f"staff {actor}", at=now,
                       reason="staff answered on the thread")
        else:
            record(session, ticket, actor=actor, kind="followup", at=now, inbound=inbound.id)
            _take_supplied(session, ticket, inbound, mail, decision, rules=rules,
                           numbering=numbering, domain=domain, now=now)
            if ticket.status == TicketStatus.CLOSED:
                set_status(session, ticket, TicketStatus.OPEN, actor=actor, at=now,
                           reason="the customer wrote after the ticket was closed: reopened")
            elif ticket.status == TicketStatus.ANSWERED:
                set_status(session, ticket, TicketStatus.OPEN, actor=actor, at=now,
                           reason="the customer answered")
            # waiting-on-customer ends when nothing is missing any more (_take_supplied)
            _deliver_to_team(session, ticket, inbound, mail, decision, rules=rules,
                             numbering=numbering, domain=domain, now=now, role="followup")
        insert_row(session, TicketMessage,
                   ticket_id=ticket.id, inbound_id=inbound.id, direction="in",
                   role="staff" if staff else "followup", message_id=mail.message_id,
                   sender=decision.sender, subject=mail.subject, created_at=now)
        inbound.ticket_id = ticket.id
        return Applied(ticket=ticket.number, outbox_id=None)
    if decision.kind != "new":
        return Applied(ticket=None, outbox_id=None)

    number = allocate_number(session, numbering, inbound.received_at.year)
    decision.ticket = number
    # The acknowledgement is composed first, so that the ticket is written once, with the
    # decision as it ends (an address that cannot be written turns the acknowledgement off).
    composed = None
    if decision.ack:
        try:
            composed = compose_ack(
                rules=rules, decision=decision, ticket=number,
                original_message_id=mail.message_id, original_references=mail.references,
                numbering=numbering, domain=domain, now=now)
        except UnusableAddress as error:
            decision.ack, decision.ack_reason = False, f"no acknowledgement: {error}"
    ticket = Ticket(
        number=number,
        subject=mail.subject or "",
        requester=decision.sender,
        requester_name=decision.details.get("sender_name") or None,
        customer=decision.customer,
        policy=decision.policy,
        queue=decision.queue,
        priority=decision.priority,
        private=decision.private,
        language=decision.details.get("language") or "sv",
        status="new",
        created_at=inbound.received_at,
        updated_at=now,
        response_due=_when(decision.response_due),
        resolution_due=_when(decision.details.get("resolution_due")),
        action_due=_when(decision.details.get("action_due")),
        missing=decision.missing,
        participants=_participants(mail, rules, [], decision),
        refers_to=decision.details.get("refers_to"),
        decision=decision.to_json(),
    )
    session.add(ticket)
    session.flush()
    assert ticket.id is not None
    insert_row(session, TicketMessage,
               ticket_id=ticket.id, inbound_id=inbound.id, direction="in", role="opening",
               message_id=mail.message_id, sender=decision.sender, subject=mail.subject,
               created_at=inbound.received_at, body_digest=decision.details.get("text_digest"))
    inbound.ticket_id = ticket.id
    outbox_id: int | None = None
    if composed is not None:
        token = new_token()
        support = decision.details.get("support_address") or ""
        keys = ack_keys(composed.recipient, decision.sender)
        outbox_id = insert_row(
            session, Outbox, ticket_id=ticket.id, inbound_id=inbound.id, purpose="ack",
            envelope_sender=verp_address(support, token) if support else "",
            recipient=composed.recipient, message_id=composed.message_id,
            raw=composed.raw, state=OutboxState.QUEUED, created_at=now, bounce_token=token,
            mailbox=keys.mailbox, recipient_domain=keys.recipient_domain,
            sender_domain=keys.sender_domain)
        insert_row(session, TicketMessage,
                   ticket_id=ticket.id, outbox_id=outbox_id, direction="out", role="ack",
                   message_id=composed.message_id,
                   sender=decision.details.get("support_address"), subject=None,
                   created_at=now)
    record(session, ticket, actor="maild", kind="created", at=now, inbound=inbound.id,
           customer=ticket.customer, queue=ticket.queue, priority=ticket.priority,
           refers_to=ticket.refers_to, acknowledged=decision.ack)
    if ticket.missing:
        set_status(session, ticket, TicketStatus.WAITING, actor="maild", at=now,
                   reason="missing information asked for: " + ", ".join(ticket.missing))
    _deliver_to_team(session, ticket, inbound, mail, decision, rules=rules, numbering=numbering,
                     domain=domain, now=now, role="opening")
    return Applied(ticket=number, outbox_id=outbox_id)


def _take_supplied(session: Session, ticket: Ticket, inbound: Inbound, mail: ParsedMail,
                   decision: Decision, *, rules: Rules, numbering: TicketNumbering, domain: str,
                   now: datetime) -> None:
    """Strike what a follow-up supplied from the missing list; confirm once it is empty."""
    supplied = [item for item in decision.details.get("supplied", [])
                if item in (ticket.missing or [])]
    if not supplied:
        return
    actor = decision.sender or "(unknown sender)"
    ticket.missing = [item for item in ticket.missing or [] if item not in supplied]
    session.add(ticket)
    record(session, ticket, actor=actor, kind="supplied", at=now, items=supplied,
           still_missing=ticket.missing)
    if ticket.missing:
        return
    set_status(session, ticket, TicketStatus.OPEN, actor=actor, at=now,
               reason="the missing information has arrived")
    policy = rules.policies.get(ticket.policy or "")
    if policy is None or not policy.confirm_complete or not decision.details.get("ack_to"):
        return
    assert ticket.id is not None
    decision.response_due = ticket.response_due.isoformat() if ticket.response_due else None
    try:
        composed = compose_ack(rules=rules, decision=decision, ticket=ticket.number,
                               original_message_id=mail.message_id,
                               original_references=mail.references, numbering=numbering,
                               domain=domain, now=now, kind="complete")
    except UnusableAddress as error:
        record(session, ticket, actor="maild", kind="note", at=now,
               text=f"no confirmation sent: {error}")
        return
    session.add(Outbox(ticket_id=ticket.id, inbound_id=inbound.id, purpose="confirmation",
                       envelope_sender="", recipient=composed.recipient,
                       message_id=composed.message_id, raw=composed.raw,
                       state=OutboxState.QUEUED, created_at=now))


def _deliver_to_team(session: Session, ticket: Ticket, inbound: Inbound, mail: ParsedMail,
                     decision: Decision, *, rules: Rules, numbering: TicketNumbering,
                     domain: str, now: datetime, role: str) -> None:
    """Queue the customer's message, with a summary on top, to the queue's team."""
    assert ticket.id is not None
    support = decision.details.get("support_address") or rules.default_address.address
    reason = (ticket.decision or {}).get("priority_reason") or "as before"
    copies = compose_team_delivery(
        ticket=ticket, rules=rules, raw=inbound.raw, original_subject=mail.subject,
        sender=decision.sender, priority_reason=reason, role=role,
        support_address=support, numbering=numbering, domain=domain, now=now)
    # The copies carry the original: the row's bytes are let go before the copies are
    # written, so a large message is not in memory three times (the original, its copy
    # and the database's copies of that) while it is.
    session.expire(inbound, ["raw"])
    while copies:
        composed = copies.pop(0)
        insert_row(session, Outbox, ticket_id=ticket.id, inbound_id=inbound.id, purpose="team",
                   envelope_sender="", recipient=composed.recipient,
                   message_id=composed.message_id, raw=composed.raw,
                   state=OutboxState.QUEUED, created_at=now)  # null sender, RFC 3834


def _apply_bounce(session: Session, inbound: Inbound, mail: ParsedMail, decision: Decision,
                  now: datetime) -> Applied:
    """Attach a bounce to its ticket, mark the item bounced, suppress a dead address."""
    bounce = decision.details["bounce_of"]
    item = session.get(Outbox, bounce["outbox"])
    if item is None:
        return Applied(ticket=None, outbox_id=None)
    result = "bounced" if bounce["permanent"] else "delayed"
    detail = f"{result} ({bounce['evidence']}), report in inbound {inbound.id}"
    if bounce["permanent"]:
        item.state = OutboxState.BOUNCED
    item.last_error = detail
    item.history = [*(item.history or []), {"at": now.isoformat(), "result": result,
                                             "detail": detail}]
    session.add(item)
    if bounce["permanent"]:
        address = item.recipient.lower()
        existing = session.get(Suppression, address)
        if existing is None:
            existing = Suppression(address=address, bounced_at=now, reason="", inbound_id=None)
        existing.bounced_at, existing.inbound_id = now, inbound.id
        existing.reason = f"{bounce['evidence']} on {now.date().isoformat()}"
        session.add(existing)
    if item.ticket_id is not None:
        session.add(TicketMessage(
            ticket_id=item.ticket_id, inbound_id=inbound.id, direction="in", role="bounce",
            message_id=mail.message_id, sender=decision.sender, subject=mail.subject,
            created_at=now))
        inbound.ticket_id = item.ticket_id
    return Applied(ticket=decision.ticket, outbox_id=item.id)


def _when(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None
