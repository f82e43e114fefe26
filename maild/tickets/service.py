"""Applying a decision: ticket, its messages and the acknowledgement in one transaction."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select
from sqlmodel import Session

from maild.bytes_apart import StoredOriginal, bytes_apart
from maild.json_columns import SerializedJson, serialized
from maild.models import (
    Outbox,
    OutboxState,
    Suppression,
    TicketMessage,
    TicketStatus,
    table_of,
)
from maild.parse import ParsedMail
from maild.pipeline import Decision
from maild.prepared import Prepared, pipelined
from maild.respond.ack import ComposedMail, compose_ack
from maild.respond.address import UnusableAddress
from maild.respond.bounces import new_token, verp_address
from maild.respond.policy import ack_keys
from maild.respond.team import compose_team_copies
from maild.routing.model import Rules
from maild.tickets.lifecycle import change_status, record, record_status, set_status
from maild.tickets.numbering import TicketNumbering, allocate_number
from maild.tickets.responses import record_first_response
from maild.tickets.rows import add_outbox, insert_outbox, insert_row, send_row
from maild.tickets.ticket_row import TicketRow, insert_ticket, load_ticket, save_ticket

_OUTBOX = table_of(Outbox)
# A bounce's writes; the columns to set come with each execution's parameters.
_BOUNCED_ITEM = Prepared(select(_OUTBOX.c.id, _OUTBOX.c.recipient, _OUTBOX.c.ticket_id,
                                _OUTBOX.c.history).where(_OUTBOX.c.id == bindparam("outbox_id")))
_OUTBOX_UPDATE = Prepared(_OUTBOX.update().where(_OUTBOX.c.id == bindparam("outbox_id")))
_SUPPRESSED = table_of(Suppression)
_SUPPRESSION_UPDATE = Prepared(
    _SUPPRESSED.update().where(_SUPPRESSED.c.address == bindparam("suppressed")))
_SUPPRESSION_INSERT = Prepared(_SUPPRESSED.insert())


@dataclass
class StoredMessage:
    """The stored message a decision is applied for: its inbound row, arrival and bytes.

    `raw` is what its row holds: a large message's team copy is copied from the row.
    """

    id: int
    received_at: datetime
    raw: bytes

    def let_go_of_bytes(self) -> None:
        """Drop this reference to the message's bytes (the row in the database keeps them)."""
        self.raw = b""


@dataclass(frozen=True)
class Applied:
    """What applying a decision created, and the ticket the message now belongs to.

    A new ticket's decision record is given with the JSON text written for it, so that
    the inbound message can be given the same text without serialising it again.
    """

    ticket: str | None
    outbox_id: int | None
    ticket_id: int | None = None
    decision: dict[str, Any] | None = None
    decision_json: SerializedJson | None = None


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
    inbound: StoredMessage,
    mail: ParsedMail,
    decision: Decision,
    *,
    rules: Rules,
    numbering: TicketNumbering,
    domain: str,
    now: datetime,
) -> Applied:
    """Write what `decision` says inside the caller's transaction; fills in `decision.ticket`.

    Everything is written with Core statements on the session's connection; the session
    is left without pending ORM objects.
    """
    if decision.kind == "bounce" and decision.details.get("bounce_of"):
        return _apply_bounce(session, inbound, mail, decision, now)
    if decision.kind == "followup":
        return _apply_followup(session, inbound, mail, decision, rules=rules,
                               numbering=numbering, domain=domain, now=now)
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
    decision_record = decision.to_json()
    ticket = TicketRow(
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
        decision=decision_record,
    )
    # A ticket that asks for missing information is written waiting on the customer; its
    # trail shows the change once it exists.
    opened = change_status(
        ticket, TicketStatus.WAITING, actor="maild", at=now,
        reason="missing information asked for: " + ", ".join(ticket.missing),
    ) if ticket.missing else None
    # The rows whose keys are read come first (the ticket's, the acknowledgement's); the
    # rest are sent in a pipeline (`maild.prepared.pipelined`), in the same order per table.
    written = serialized(decision_record)
    ticket_id = insert_ticket(session, ticket, decision_json=written)
    outbox_id: int | None = None
    if composed is not None:
        token = new_token()
        support = decision.details.get("support_address") or ""
        keys = ack_keys(composed.recipient, decision.sender)
        outbox_id = insert_outbox(
            session, [composed.raw], ticket_id=ticket_id, inbound_id=inbound.id, purpose="ack",
            envelope_sender=verp_address(support, token) if support else "",
            recipient=composed.recipient, message_id=composed.message_id,
            state=OutboxState.QUEUED, created_at=now, bounce_token=token,
            mailbox=keys.mailbox, recipient_domain=keys.recipient_domain,
            sender_domain=keys.sender_domain)
    with pipelined(session):
        send_row(session, TicketMessage,
                 ticket_id=ticket_id, inbound_id=inbound.id, direction="in", role="opening",
                 message_id=mail.message_id, sender=decision.sender, subject=mail.subject,
                 created_at=inbound.received_at,
                 body_digest=decision.details.get("text_digest"))
        if composed is not None:
            send_row(session, TicketMessage,
                     ticket_id=ticket_id, outbox_id=outbox_id, direction="out", role="ack",
                     message_id=composed.message_id,
                     sender=decision.details.get("support_address"), subject=None,
                     created_at=now)
        record(session, ticket, actor="maild", kind="created", at=now, inbound=inbound.id,
               customer=ticket.customer, queue=ticket.queue, priority=ticket.priority,
               refers_to=ticket.refers_to, acknowledged=decision.ack)
        if opened is not None:
            record_status(session, ticket, opened)
        _deliver_to_team(session, ticket, inbound, mail, decision, rules=rules,
                         numbering=numbering, domain=domain, now=now, role="opening")
        save_ticket(session, ticket)
    return Applied(ticket=number, outbox_id=outbox_id, ticket_id=ticket_id,
                   decision=decision_record, decision_json=written)


def _apply_followup(session: Session, inbound: StoredMessage, mail: ParsedMail,
                    decision: Decision, *, rules: Rules, numbering: TicketNumbering, domain: str,
                    now: datetime) -> Applied:
    """Add the message to its ticket: a staff answer, or the customer's follow-up."""
    ticket = load_ticket(session, decision.ticket or "")
    assert ticket.id is not None
    ticket.updated_at = now
    # Nothing below reads a key it writes: sent in a pipeline (`maild.prepared.pipelined`).
    with pipelined(session):
        staff = bool(decision.details.get("staff"))
        if not staff:
            ticket.participants = _participants(mail, rules, ticket.participants or [], decision)
        actor = decision.sender or "(unknown sender)"
        confirmation = None
        if staff:
            if not record_first_response(session, ticket, at=inbound.received_at,
                                         actor=f"staff {actor}", inbound=inbound.id):
                record(session, ticket, actor=f"staff {actor}", kind="response", at=now,
                       inbound=inbound.id)
            set_status(session, ticket, TicketStatus.ANSWERED, actor=f"staff {actor}", at=now,
                       reason="staff answered on the thread")
        else:
            record(session, ticket, actor=actor, kind="followup", at=now, inbound=inbound.id)
            confirmation = _take_supplied(session, ticket, mail, decision, rules=rules,
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
        send_row(session, TicketMessage,
                 ticket_id=ticket.id, inbound_id=inbound.id, direction="in",
                 role="staff" if staff else "followup", message_id=mail.message_id,
                 sender=decision.sender, subject=mail.subject, created_at=now)
        save_ticket(session, ticket)
        if confirmation is not None:  # queued after the team's copies, as it always was
            add_outbox(session, [confirmation.raw], ticket_id=ticket.id, inbound_id=inbound.id,
                       purpose="confirmation", envelope_sender="",
                       recipient=confirmation.recipient, message_id=confirmation.message_id,
                       state=OutboxState.QUEUED, created_at=now, history=[])
    return Applied(ticket=ticket.number, outbox_id=None, ticket_id=ticket.id)


def _take_supplied(session: Session, ticket: TicketRow, mail: ParsedMail, decision: Decision,
                   *, rules: Rules, numbering: TicketNumbering, domain: str, now: datetime
                   ) -> ComposedMail | None:
    """Strike what a follow-up supplied from the missing list; once it is empty, the
    confirmation to queue (if the policy sends one)."""
    supplied = [item for item in decision.details.get("supplied", [])
                if item in (ticket.missing or [])]
    if not supplied:
        return None
    actor = decision.sender or "(unknown sender)"
    ticket.missing = [item for item in ticket.missing or [] if item not in supplied]
    record(session, ticket, actor=actor, kind="supplied", at=now, items=supplied,
           still_missing=ticket.missing)
    if ticket.missing:
        return None
    set_status(session, ticket, TicketStatus.OPEN, actor=actor, at=now,
               reason="the missing information has arrived")
    policy = rules.policies.get(ticket.policy or "")
    if policy is None or not policy.confirm_complete or not decision.details.get("ack_to"):
        return None
    decision.response_due = ticket.response_due.isoformat() if ticket.response_due else None
    try:
        return compose_ack(rules=rules, decision=decision, ticket=ticket.number,
                           original_message_id=mail.message_id,
                           original_references=mail.references, numbering=numbering,
                           domain=domain, now=now, kind="complete")
    except UnusableAddress as error:
        record(session, ticket, actor="maild", kind="note", at=now,
               text=f"no confirmation sent: {error}")
        return None


def _deliver_to_team(session: Session, ticket: TicketRow, inbound: StoredMessage,
                     mail: ParsedMail, decision: Decision, *, rules: Rules,
                     numbering: TicketNumbering, domain: str, now: datetime, role: str) -> None:
    """Queue the customer's message, with a summary on top, to the queue's team."""
    assert ticket.id is not None
    support = decision.details.get("support_address") or rules.default_address.address
    reason = (ticket.decision or {}).get("priority_reason") or "as before"
    original = inbound.raw
    copies = compose_team_copies(
        ticket=ticket, rules=rules, raw=original, original_subject=mail.subject,
        sender=decision.sender, priority_reason=reason, role=role,
        support_address=support, numbering=numbering, domain=domain, now=now,
        opaque="MimeNestingTooDeep" in mail.defects)
    # The copies carry the original: its bytes are let go before the copies are written,
    # so a large message is not in memory three times (the original, its copy and the
    # database's copies of that) while it is. Nothing after the team copy reads them.
    # On SQLite an original attached as it was received is not even joined into its
    # copies: they refer to it where it is stored (`maild.bytes_apart`).
    inbound.let_go_of_bytes()
    stored = (StoredOriginal(inbound.id)
              if bytes_apart(session.connection().dialect.name) else None)
    written = [(copy.message_id, copy.recipient,
                [stored if stored is not None and part is original else part
                 for part in copy.parts] if stored is not None else [b"".join(copy.parts)])
               for copy in copies]
    del original, copies
    while written:
        message_id, recipient, parts = written.pop(0)
        add_outbox(session, parts, ticket_id=ticket.id, inbound_id=inbound.id,
                   purpose="team", envelope_sender="", recipient=recipient,
                   message_id=message_id, state=OutboxState.QUEUED,
                   created_at=now)  # null sender, RFC 3834



def _apply_bounce(session: Session, inbound: StoredMessage, mail: ParsedMail,
                  decision: Decision, now: datetime) -> Applied:
    """Attach a bounce to its ticket, mark the item bounced, suppress a dead address."""
    bounce = decision.details["bounce_of"]
    connection = session.connection()
    item = _BOUNCED_ITEM.run(connection, {"outbox_id": bounce["outbox"]}).first()
    if item is None:
        return Applied(ticket=None, outbox_id=None)
    result = "bounced" if bounce["permanent"] else "delayed"
    detail = f"{result} ({bounce['evidence']}), report in inbound {inbound.id}"
    changes: dict[str, Any] = {"last_error": detail, "history": [
        *(item.history or []), {"at": now.isoformat(), "result": result, "detail": detail}]}
    if bounce["permanent"]:
        changes["state"] = OutboxState.BOUNCED
    _OUTBOX_UPDATE.run(connection, {"outbox_id": item.id, **changes})
    if bounce["permanent"]:
        address = item.recipient.lower()
        reason = f"{bounce['evidence']} on {now.date().isoformat()}"
        values = {"bounced_at": now, "inbound_id": inbound.id, "reason": reason}
        if _SUPPRESSION_UPDATE.run(connection, {"suppressed": address, **values}).rowcount == 0:
            _SUPPRESSION_INSERT.run(connection, {"address": address, **values})
    if item.ticket_id is not None:
        insert_row(session, TicketMessage,
                   ticket_id=item.ticket_id, inbound_id=inbound.id, direction="in",
                   role="bounce", message_id=mail.message_id, sender=decision.sender,
                   subject=mail.subject, created_at=now)
    return Applied(ticket=decision.ticket, outbox_id=item.id, ticket_id=item.ticket_id)


def _when(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None
