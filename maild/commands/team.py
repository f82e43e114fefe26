"""The support team's commands: queues, the ticket list, and working a ticket."""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from rich.table import Table
from sqlmodel import Session, col, select

from maild.commands.common import (
    EX_OK,
    ZONE_LABEL,
    CommandError,
    Context,
    console,
    local_time,
    print_json,
)
from maild.log import get_logger
from maild.models import Ticket, TicketEvent, TicketStatus, utcnow
from maild.respond.wording import LOCAL_ZONE
from maild.routing.model import Rules
from maild.tickets import actions

log = get_logger("maild.tickets")

NEAR = timedelta(hours=2)


def _actor(args: argparse.Namespace) -> str:
    by = getattr(args, "by", None)
    if by:
        return str(by)
    try:
        return os.environ.get("SUDO_USER") or getpass.getuser()
    except (KeyError, OSError):
        return "cli"


def is_overdue(ticket: Ticket, now: datetime) -> bool:
    """A response is due, none was given, and the deadline has passed."""
    return (ticket.response_due is not None and ticket.first_response_at is None
            and ticket.status != TicketStatus.CLOSED and ticket.response_due <= now)


def due_today(ticket: Ticket, now: datetime) -> bool:
    if ticket.response_due is None or ticket.first_response_at is not None or \
            ticket.status == TicketStatus.CLOSED:
        return False
    today = now.astimezone(LOCAL_ZONE).date()
    return ticket.response_due.astimezone(LOCAL_ZONE).date() == today


def queues(context: Context, args: argparse.Namespace) -> int:
    """Each queue with counts: new, open, waiting, answered, overdue, due today."""
    rules = context.runtime.rules
    now = utcnow()
    counts: dict[str, Counter[str]] = {queue: Counter() for queue in rules.queues}
    with Session(context.runtime.engine) as session:
        for ticket in session.exec(select(Ticket).where(
                col(Ticket.status) != TicketStatus.CLOSED)):
            row = counts.setdefault(ticket.queue or "-", Counter())
            row[ticket.status] += 1
            row["overdue"] += is_overdue(ticket, now)
            row["due today"] += due_today(ticket, now)
    data = [{"queue": queue, "name": rules.queues[queue].name if queue in rules.queues else "",
             "new": row[TicketStatus.NEW], "open": row[TicketStatus.OPEN],
             "waiting": row[TicketStatus.WAITING], "answered": row[TicketStatus.ANSWERED],
             "overdue": row["overdue"], "due_today": row["due today"]}
            for queue, row in counts.items()]
    if args.json:
        print_json(data)
        return EX_OK
    table = Table(title="Köer", header_style="bold")
    for column in ("queue", "name", "new", "open", "waiting", "answered", "overdue",
                   "due today"):
        table.add_column(column)
    for line in data:
        overdue = f"[bold red]{line['overdue']}[/]" if line["overdue"] else "0"
        table.add_row(str(line["queue"]), str(line["name"]), str(line["new"]),
                      str(line["open"]), str(line["waiting"]), str(line["answered"]), overdue,
                      str(line["due_today"]))
    console().print(table)
    return EX_OK


def _priority_rank(ticket: Ticket, rules: Rules) -> int:
    policy = rules.policies.get(ticket.policy or "")
    if policy is None or ticket.priority not in policy.priorities:
        return 99
    return policy.priorities.index(ticket.priority or "")


def ticket_row(ticket: Ticket, now: datetime) -> dict[str, Any]:
    """A ticket as the list shows it, for tables and JSON."""
    return {
        "number": ticket.number, "status": ticket.status, "priority": ticket.priority,
        "response_due": ticket.response_due.isoformat() if ticket.response_due else None,
        "overdue": is_overdue(ticket, now), "customer": ticket.customer,
        "private": ticket.private, "queue": ticket.queue, "requester": ticket.requester,
        "assignee": ticket.assignee, "missing": ticket.missing or [],
        "subject": ticket.subject, "received": ticket.created_at.isoformat(),
        "first_response_at": ticket.first_response_at.isoformat()
        if ticket.first_response_at else None,
    }


def tickets(context: Context, args: argparse.Namespace) -> int:
    """The ticket list, filtered and sorted, with deadlines highlighted."""
    runtime = context.runtime
    now = utcnow()
    with Session(runtime.engine) as session:
        query = select(Ticket)
        if args.queue:
            query = query.where(col(Ticket.queue) == args.queue)
        if args.status:
            query = query.where(col(Ticket.status) == args.status)
        if args.customer:
            query = query.where(col(Ticket.customer) == args.customer)
        rows = list(session.exec(query))
    if args.overdue:
        rows = [ticket for ticket in rows if is_overdue(ticket, now)]
    far = datetime.max.replace(tzinfo=now.tzinfo)
    if args.sort == "due":
        rows.sort(key=lambda t: (t.response_due or far, t.id or 0))
    elif args.sort == "priority":
        rules = runtime.rules
        rows.sort(key=lambda t: (_priority_rank(t, rules), t.response_due or far, t.id or 0))
    else:
        rows.sort(key=lambda t: (t.created_at, t.id or 0), reverse=True)
    total = len(rows)
    if not args.all:
        rows = rows[:args.limit]
    if args.json:
        print_json({"shown": len(rows), "total": total,
                    "tickets": [ticket_row(ticket, now) for ticket in rows]})
        return EX_OK
    if not rows:
        console().print("no tickets match")
        return EX_OK
    title = (f"{total} tickets" if len(rows) == total
             else f"showing {len(rows)} of {total} tickets (--all for every one)")
    table = Table(title=title, header_style="bold", caption=f"times in {ZONE_LABEL}")
    table.add_column("number", no_wrap=True, min_width=len(rows[0].number))
    table.add_column("status", overflow="fold")
    table.add_column("prio", overflow="fold")
    table.add_column("due", no_wrap=True)
    for column in ("customer", "queue", "from", "missing", "subject"):
        table.add_column(column, overflow="fold")
    for ticket in rows:
        due = local_time(ticket.response_due) or "-"
        if ticket.response_due and ticket.first_response_at is None and \
                ticket.status != TicketStatus.CLOSED:
            if ticket.response_due <= now:
                due = f"[bold red]{due} overdue[/]"
            elif ticket.response_due - now <= NEAR:
                due = f"[yellow]{due}[/]"
        customer = ticket.customer or "-"
        if ticket.private:
            customer += " [magenta](privat)[/]"
        table.add_row(ticket.number, ticket.status, ticket.priority or "", due, customer,
                      ticket.queue or "", ticket.requester or "",
                      ", ".join(ticket.missing or []), (ticket.subject or "")[:60])
    console().print(table)
    return EX_OK


def find_ticket(session: Session, number: str) -> Ticket:
    """The ticket with `number` (brackets and case forgiven); CommandError when there is none."""
    ticket = session.exec(select(Ticket).where(
        col(Ticket.number) == number.strip().strip("[]").upper())).first()
    if ticket is None:
        raise CommandError(f"no ticket {number}")
    return ticket


def _change(context: Context, args: argparse.Namespace, action: str) -> int:
    actor = _actor(args)
    now = utcnow()
    with Session(context.runtime.engine) as session:
        ticket = find_ticket(session, args.number)
        try:
            if action == "assign":
                actions.assign(session, ticket, args.who, actor=actor, now=now)
                message = f"{ticket.number} assigned to {args.who}"
            elif action == "close":
                actions.close(session, ticket, args.reason, actor=actor, now=now,
                              rules=context.runtime.rules, review=args.review)
                message = f"{ticket.number} closed" + (" with its review" if args.review else "")
            elif action == "reopen":
                actions.reopen(session, ticket, args.reason, actor=actor, now=now)
                message = f"{ticket.number} reopened"
            elif action == "reply":
                queued = actions.reply(session, ticket, _reply_text(args), actor=actor,
                                       rules=context.runtime.rules,
                                       numbering=context.runtime.numbering,
                                       domain=mail_domain(context), now=now)
                message = (f"reply to {ticket.number} queued for {queued.recipient} "
                           f"(outbox {queued.outbox_id})")
            else:
                actions.note(session, ticket, args.text, actor=actor, now=now)
                message = f"note added to {ticket.number}"
        except actions.ActionRefused as refused:
            raise CommandError(str(refused)) from None
        session.commit()
        data = ticket_row(ticket, now)
    if action == "reply":
        context.runtime.flush_outbox()
    if getattr(args, "json", False):
        print_json(data)
    else:
        console().print(message, markup=False)
    return EX_OK


def mail_domain(context: Context) -> str:
    """The domain of maild's Message-IDs: the configured one, else the first support address's."""
    return context.config.mail_domain or \
        context.runtime.rules.default_address.address.rpartition("@")[2]


def _reply_text(args: argparse.Namespace) -> str:
    if args.text is not None:
        return str(args.text)
    if args.file == "-":
        return sys.stdin.read()
    try:
        return Path(args.file).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise CommandError(f"{args.file}: cannot read the reply: {error}") from None


def reply(context: Context, args: argparse.Namespace) -> int:
    """Send a reply to the ticket's requester through the outbox (threaded, tagged)."""
    return _change(context, args, "reply")


def assign(context: Context, args: argparse.Namespace) -> int:
    """Give the ticket to someone (a new ticket becomes open)."""
    return _change(context, args, "assign")


def close(context: Context, args: argparse.Namespace) -> int:
    """Close the ticket."""
    return _change(context, args, "close")


def reopen(context: Context, args: argparse.Namespace) -> int:
    """Open a closed ticket again."""
    return _change(context, args, "reopen")


def note(context: Context, args: argparse.Namespace) -> int:
    """Add an internal note to the ticket's trail."""
    return _change(context, args, "note")


def priority(context: Context, args: argparse.Namespace) -> int:
    """Give the ticket another priority of its policy; deadlines follow from its start."""
    actor = _actor(args)
    now = utcnow()
    rules = context.runtime.rules
    with Session(context.runtime.engine) as session:
        ticket = find_ticket(session, args.number)
        try:
            change = actions.prioritise(session, ticket, args.level, reason=args.reason,
                                        actor=actor, now=now, rules=rules)
        except actions.ActionRefused as error:
            raise CommandError(str(error)) from None
        session.commit()
        data = ticket_row(ticket, now)
    if getattr(args, "json", False):
        print_json({**data, "old_priority": change.old, "reason": change.reason,
                    "resolution_due": change.resolution_due.isoformat()
                    if change.resolution_due else None})
        return EX_OK
    was = local_time(change.old_response_due) or "none"
    console().print(f"{change.ticket}: priority {change.old} → {change.new} ({change.reason}); "
                    f"response due {local_time(change.response_due) or 'none'} (was {was})",
                    markup=False)
    return EX_OK


def events(session: Session, ticket_id: int) -> list[TicketEvent]:
    """The ticket's trail, oldest first."""
    return list(session.exec(select(TicketEvent).where(col(TicketEvent.ticket_id) == ticket_id)
                             .order_by(col(TicketEvent.at), col(TicketEvent.id))))


def entitle(context: Context, args: argparse.Namespace) -> int:
    """Give a ticket the agreement's commitment maild withheld (unauthenticated or not a contact).

    The priority becomes the one the sender's mail asked for, and the deadlines are
    computed from the ticket's start, as if the sender had been entitled from the first.
    """
    actor = _actor(args)
    with Session(context.runtime.engine) as session:
        ticket = find_ticket(session, args.number)
        try:
            done = actions.entitle(session, ticket, reason=args.reason, actor=actor,
                                   now=utcnow(), rules=context.runtime.rules)
        except actions.ActionRefused as refused:
            raise CommandError(str(refused)) from refused
        session.commit()
        data = ticket_row(ticket, utcnow())
    if args.json:
        print_json(data)
    else:
        due = local_time(done.response_due) if done.response_due else "no response target"
        console().print(f"{done.ticket} entitled: priority {done.priority}, first response due "
                        f"{due}", markup=False)
    return EX_OK
