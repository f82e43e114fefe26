"""Operators' views: tickets, stored messages, the quarantine and the outbox."""

from __future__ import annotations

import argparse
import email
import email.policy
import sys
from datetime import datetime
from typing import Any

from rich.markup import escape
from sqlalchemy import func, select
from sqlmodel import Session, col

from maild.bytes_apart import inbound_bytes, outbox_bytes
from maild.commands.common import (
    EX_FAILED,
    EX_OK,
    ZONE_LABEL,
    CommandError,
    Context,
    console,
    local_time,
    print_json,
    print_table,
    readable,
)
from maild.commands.team import events as team_events
from maild.commands.team import find_ticket
from maild.models import Inbound, InboundState, Outbox, Ticket, TicketMessage
from maild.respond.outbox_actions import cancel_item, retry_item


def _ticket_json(ticket: Ticket) -> dict[str, Any]:
    return ticket.model_dump(mode="json")


def ticket_show(context: Context, args: argparse.Namespace) -> int:
    """One ticket with its messages in order and its decision record."""
    with Session(context.runtime.engine) as session:
        ticket = find_ticket(session, args.number)
        messages = list(session.scalars(
            select(TicketMessage).where(col(TicketMessage.ticket_id) == ticket.id)
            .order_by(col(TicketMessage.created_at), col(TicketMessage.id))
        ))
        data = _ticket_json(ticket)
        data["messages"] = [message.model_dump(mode="json") for message in messages]
        trail = team_events(session, ticket.id or 0)
        data["events"] = [event.model_dump(mode="json") for event in trail]
    if args.json:
        print_json(data)
        return EX_OK
    out = console()
    out.print(f"[bold]{ticket.number}[/bold]  {escape(ticket.subject)}")
    for key in ("status", "assignee", "customer", "policy", "queue", "priority", "private",
                "language", "requester", "requester_name", "missing", "refers_to"):
        out.print(f"  {key}: {readable(getattr(ticket, key))}", markup=False)
    out.print(f"  received: {local_time(ticket.created_at)}", markup=False)
    for key in ("response_due", "action_due", "resolution_due"):
        moment = getattr(ticket, key)
        if moment is None and key != "response_due":
            continue
        value = local_time(moment) or "none"
        if getattr(ticket, key.replace("_due", "_breached_at")) is not None:
            value += "  (missed)"
        out.print(f"  {key}: {value}", markup=False)
    if ticket.first_response_at:
        out.print(f"  first response: {local_time(ticket.first_response_at)}", markup=False)
    out.print(f"  (times in {ZONE_LABEL})", markup=False)
    out.print("\nmessages:")
    for message in messages:
        arrow = "→ in " if message.direction == "in" else "← out"
        source = (f"inbound {message.inbound_id}" if message.inbound_id
                  else f"outbox {message.outbox_id}")
        out.print(f"  {local_time(message.created_at)}  {arrow}  {message.role:<9} "
                  f"{message.sender or ''}  ({source})", markup=False)
    out.print("\nevents:")
    for event in trail:
        out.print(f"  {local_time(event.at)}  {event.kind:<9} {event.actor}  "
                  f"{readable(event.detail or {})}", markup=False)
    out.print("\ndecision:")
    for key, value in (ticket.decision or {}).items():
        if key == "rules_tried":
            out.print("  rules_tried:")
            for step in value:
                mark = "matched" if step["matched"] else "not matched"
                out.print(f"    {step['rule']}: {mark}: {step['detail']}", markup=False)
        elif key in ("received_at", "response_due", "resolution_due") and value:
            out.print(f"  {key}: {local_time(datetime.fromisoformat(value))}", markup=False)
        else:
            out.print(f"  {key}: {readable(value)}", markup=False)
    return EX_OK


def _inbound_summary(row: Inbound) -> dict[str, Any]:
    return {
        "id": row.id, "received_at": row.received_at.isoformat(), "transport": row.transport,
        "source": row.source, "envelope_sender": row.envelope_sender,
        "envelope_recipients": row.envelope_recipients, "size": row.size,
        "message_id": row.message_id, "state": row.state, "kind": row.kind,
        "attempts": row.attempts, "duplicates": row.duplicates,
        "last_error": row.last_error.splitlines()[0] if row.last_error else None,
    }


def inbound_list(context: Context, args: argparse.Namespace) -> int:
    """Stored raw messages, newest first, with their processing state."""
    with Session(context.runtime.engine) as session:
        query = select(Inbound).order_by(col(Inbound.id).desc())
        counting = select(func.count()).select_from(Inbound)
        if args.state:
            query = query.where(col(Inbound.state) == args.state)
            counting = counting.where(col(Inbound.state) == args.state)
        if not getattr(args, "all", False):
            query = query.limit(args.limit)
        total = int(session.scalar(counting) or 0)
        found = list(session.scalars(query))
        rows = [_inbound_summary(row) for row in found]
    if args.json:
        print_json({"shown": len(rows), "total": total, "messages": rows})
        return EX_OK
    if not rows:
        console().print("no stored messages" + (f" in state {args.state}" if args.state else ""))
        return EX_OK
    title = (None if len(rows) == total
             else f"showing {len(rows)} of {total} stored messages (--all for every one)")
    print_table(title, ["id", f"received ({ZONE_LABEL})", "via", "state", "kind", "size",
                        "message-id", "error"], [
        [r["id"], local_time(row.received_at), r["transport"], r["state"], r["kind"], r["size"],
         (r["message_id"] or "")[:50], (r["last_error"] or "")[:60]]
        for r, row in zip(rows, found, strict=True)])
    return EX_OK


def _get_inbound(session: Session, inbound_id: int) -> Inbound:
    row = session.get(Inbound, inbound_id)
    if row is None:
        raise CommandError(f"no stored message {inbound_id}")
    return row


def inbound_show(context: Context, args: argparse.Namespace) -> int:
    """One stored message: envelope, state, full error, decision record."""
    with Session(context.runtime.engine) as session:
        row = _get_inbound(session, args.id)
        data = _inbound_summary(row)
        data["last_error"] = row.last_error
        data["decision"] = row.decision
    if args.json:
        print_json(data)
        return EX_OK
    out = console()
    for key, value in data.items():
        if key == "decision" and value:
            out.print("decision:")
            for name, item in value.items():
                out.print(f"  {name}: {'' if item is None else item}", markup=False)
        else:
            out.print(f"{key}: {'' if value is None else value}", markup=False)
    return EX_OK


def inbound_raw(context: Context, args: argparse.Namespace) -> int:
    """Write the stored raw bytes to standard output exactly as received."""
    with Session(context.runtime.engine) as session:
        raw = inbound_bytes(session, args.id)
    if raw is None:
        raise CommandError(f"no stored message {args.id}")
    sys.stdout.buffer.write(raw)
    sys.stdout.buffer.flush()
    return EX_OK


def quarantine_list(context: Context, args: argparse.Namespace) -> int:
    """Quarantined messages with the reason they were set aside."""
    args.state, args.limit, args.all = InboundState.QUARANTINED, 1000, True
    return inbound_list(context, args)


def quarantine_retry(context: Context, args: argparse.Namespace) -> int:
    """Put quarantined messages back to be processed, and process them now."""
    runtime = context.runtime
    with Session(runtime.engine) as session:
        query = select(Inbound).where(col(Inbound.state) == InboundState.QUARANTINED)
        if not args.all:
            if not args.ids:
                raise CommandError("name the messages to retry (IDs) or give --all")
            query = query.where(col(Inbound.id).in_(args.ids))
        rows = list(session.scalars(query))
        found = {row.id for row in rows}
        missing = [i for i in args.ids if i not in found]
        for row in rows:
            row.state, row.attempts, row.claimed_until = InboundState.RECEIVED, 0, None
            session.add(row)
        session.commit()
    processor = runtime.processor()
    outcomes = [processor.process_now(row_id) for row_id in sorted(i for i in found if i)]
    for outcome in outcomes:
        if outcome is not None:
            detail = outcome.ticket or outcome.kind or outcome.error or ""
            console().print(f"inbound {outcome.inbound_id}: {outcome.state} {detail}",
                            markup=False)
    runtime.flush_outbox()
    for inbound_id in missing:
        print(f"maild: inbound {inbound_id} is not in quarantine", file=sys.stderr)
    return EX_FAILED if missing else EX_OK


def outbox_list(context: Context, args: argparse.Namespace) -> int:
    """Outgoing messages with their delivery state."""
    with Session(context.runtime.engine) as session:
        query = select(Outbox).order_by(col(Outbox.id).desc()).limit(500)
        if args.state:
            query = query.where(col(Outbox.state) == args.state)
        rows = list(session.scalars(query))
        counts: dict[str, int] = {
            row[0]: row[1] for row in session.execute(
                select(col(Outbox.state), func.count()).group_by(col(Outbox.state))).all()}
    data = [row.model_dump(mode="json", exclude={"raw"}) for row in rows]
    if args.json:
        print_json(data)
        return EX_OK
    console().print(", ".join(f"{state} {count}" for state, count in sorted(counts.items()))
                    or "the outbox is empty")
    if rows:
        print_table(None, ["id", "purpose", "state", "to", "attempts", "created", "error"], [
            [r.id, r.purpose, r.state, r.recipient, r.attempts, local_time(r.created_at),
             (r.last_error or "")[:60]] for r in rows])
    return EX_OK


def outbox_show(context: Context, args: argparse.Namespace) -> int:
    """One outgoing message: its headers decoded and its text as a person reads it."""
    with Session(context.runtime.engine) as session:
        item = session.get(Outbox, args.id)
        if item is None:
            raise CommandError(f"no outbox item {args.id}")
        raw = outbox_bytes(session, args.id) or b""
        if args.raw:
            sys.stdout.buffer.write(raw)
            return EX_OK
        out = console()
        out.print(f"# {item.purpose} to {item.recipient}: {item.state}, attempts "
                  f"{item.attempts}, created {local_time(item.created_at)} ({ZONE_LABEL})"
                  + (f", last error: {item.last_error}" if item.last_error else ""),
                  markup=False)
        message = email.message_from_bytes(raw, policy=email.policy.default)
        for name, value in message.items():
            out.print(f"{name}: {value}", markup=False, soft_wrap=True)
        out.print("")
        for part in message.walk():
            if part.is_multipart():
                continue
            if part.get_content_maintype() == "text" and not part.get_filename():
                try:
                    text = part.get_content()
                except (LookupError, ValueError):
                    payload = part.get_payload(decode=True)
                    text = payload.decode("utf-8", "replace") if isinstance(payload, bytes) \
                        else str(payload)
                out.print(text.rstrip("\n"), markup=False, soft_wrap=True)
            else:
                out.print(f"[{part.get_content_type()}: {part.get_filename() or 'no name'}, "
                          f"{len(part.get_payload(decode=True) or b'')} bytes]", markup=False)
    return EX_OK


def outbox_retry(context: Context, args: argparse.Namespace) -> int:
    """Queue an outgoing message again and try to deliver it now."""
    result = retry_item(context.runtime.engine, args.id)
    if not result.done:
        raise CommandError(result.message)
    console().print(result.message, markup=False)
    return outbox_flush(context, args)


def outbox_cancel(context: Context, args: argparse.Namespace) -> int:
    """Withdraw an outgoing message that has not been sent."""
    result = cancel_item(context.runtime.engine, args.id, args.reason)
    if not result.done:
        raise CommandError(result.message)
    console().print(result.message, markup=False)
    return EX_OK


def outbox_flush(context: Context, args: argparse.Namespace) -> int:
    """Deliver every queued message that is due, up to the batch size."""
    report = context.runtime.flush_outbox()
    line = f"delivered {report.sent}, to retry {report.retried}, failed {report.failed}"
    if report.left:
        line += (f"; stopped at the batch size ({report.batch_size}), {report.left} still due "
                 "(the next pass delivers them)")
    console().print(line, markup=False)
    return EX_FAILED if report.failed else EX_OK
