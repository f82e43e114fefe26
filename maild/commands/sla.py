"""`maild sla due|report|check` and `maild ticket respond`: the SLA clock for admins."""

from __future__ import annotations

import argparse
import csv
import io
import sys
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

from sqlmodel import Session, col, select

from maild.commands.common import (
    EX_OK,
    ZONE_LABEL,
    CommandError,
    Context,
    console,
    local_time,
    print_json,
    print_table,
)
from maild.commands.team import _actor, find_ticket
from maild.models import Ticket, TicketStatus, utcnow
from maild.routing.load import load_rules
from maild.sla import Calendar, Target, due
from maild.sla.monitor import run_monitor
from maild.tickets.lifecycle import record, set_status


def _received(text: str, calendar: Calendar) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as error:
        raise CommandError(f"--received: '{text}' is not an ISO 8601 time such as "
                           "2026-11-24T09:30 or 2026-11-24T09:30+01:00") from error
    return calendar.localize(moment) if moment.tzinfo is None else moment


def sla_due(context: Context, args: argparse.Namespace) -> int:
    """Print when a response is due: from a policy in rules/, or a calendar given inline."""
    if args.policy:
        rules = load_rules(context.config.rules_dir)
        policy = rules.policies.get(args.policy)
        if policy is None:
            raise CommandError(f"no policy '{args.policy}' (defined: "
                               f"{', '.join(rules.policies)})")
        priority = args.priority or policy.default_priority
        target = policy.targets.get(priority)
        if target is None:
            raise CommandError(f"policy '{policy.id}' has no priority '{priority}' "
                               f"(priorities: {', '.join(policy.priorities)})")
        calendar = policy.calendar(priority)
        text = target.resolution if args.resolution else target.response
        if text is None:
            print("none")
            return EX_OK
    else:
        if not args.hours or not args.target:
            raise CommandError("give --policy NAME, or --hours and --target for an inline "
                               "calendar")
        try:
            calendar = Calendar.parse(args.hours, args.holidays or "", tz=args.tz)
            Target.parse(args.target)
        except ValueError as error:
            raise CommandError(str(error)) from error
        text = args.target
    received = _received(args.received, calendar) if args.received else utcnow()
    moment = due(received, text, calendar)
    print(moment.isoformat() if moment else "none")
    return EX_OK


def _month(text: str) -> tuple[datetime, datetime]:
    try:
        start = datetime.strptime(text, "%Y-%m").replace(tzinfo=UTC)
    except ValueError as error:
        raise CommandError(f"--month: '{text}' is not a month such as 2026-11") from error
    end = start.replace(year=start.year + 1, month=1) if start.month == 12 else \
        start.replace(month=start.month + 1)
    return start, end


def _uptimes(values: list[str]) -> dict[str, float]:
    uptimes: dict[str, float] = {}
    for value in values:
        customer, _, number = value.partition("=")
        try:
            uptimes[customer] = float(number)
        except ValueError as error:
            raise CommandError(f"--uptime: '{value}' is not CUSTOMER=PERCENT, such as "
                               "nordic-parcel=99.2") from error
    return uptimes


def sla_report(context: Context, args: argparse.Namespace) -> int:
    """Per customer for one month: tickets, responded in time, breaches, the penalty."""
    rules = load_rules(context.config.rules_dir)
    start, end = _month(args.month)
    now = utcnow()
    uptimes = _uptimes(args.uptime)
    rows: dict[str, dict[str, Any]] = defaultdict(lambda: {
        "tickets": 0, "responded_in_time": 0, "breaches": 0, "no_commitment": 0})
    with Session(context.runtime.engine) as session:
        query = select(Ticket).where(col(Ticket.created_at) >= start,
                                     col(Ticket.created_at) < end,
                                     col(Ticket.customer).is_not(None))
        if args.customer:
            query = query.where(col(Ticket.customer) == args.customer)
        for ticket in session.exec(query):
            row = rows[ticket.customer or ""]
            row["tickets"] += 1
            if ticket.response_due is None:
                row["no_commitment"] += 1
            elif ticket.first_response_at is not None and \
                    ticket.first_response_at <= ticket.response_due:
                row["responded_in_time"] += 1
            elif (ticket.first_response_at is not None or ticket.response_due <= now
                  or ticket.response_breached_at is not None):
                row["breaches"] += 1
    report = []
    for customer_id, row in sorted(rows.items()):
        customer = rules.customers.get(customer_id)
        policy = rules.policies.get(customer.policy) if customer else None
        penalty: float | None = None
        basis = "no penalty schedule"
        if policy is not None and policy.penalty is not None:
            kind = type(policy.penalty).__name__
            if kind == "UptimeSchedule":
                if customer_id in uptimes:
                    penalty = policy.penalty.percent(uptime=uptimes[customer_id])
                    basis = f"uptime {uptimes[customer_id]:g} %"
                else:
                    basis = "uptime not given (--uptime CUSTOMER=PERCENT)"
            else:
                penalty = policy.penalty.percent(breaches=row["breaches"])
                basis = f"{row['breaches']} breached cases"
        report.append({"customer": customer_id, "policy": policy.id if policy else None,
                       **row, "penalty_percent": penalty, "penalty_basis": basis})
    if args.format == "json":
        print_json({"month": args.month, "customers": report})
    elif args.format == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=list(report[0]) if report else ["customer"])
        writer.writeheader()
        writer.writerows(report)
        sys.stdout.write(out.getvalue())
    else:
        if not report:
            console().print(f"no customer tickets in {args.month}")
            return EX_OK
        print_table(f"SLA {args.month}", ["customer", "policy", "tickets", "in time",
                                          "breaches", "no commitment", "penalty", "basis"], [
            [r["customer"], r["policy"], r["tickets"], r["responded_in_time"], r["breaches"],
             r["no_commitment"],
             "-" if r["penalty_percent"] is None else f"{r['penalty_percent']:g} %",
             r["penalty_basis"]] for r in report])
    return EX_OK


def sla_check(context: Context, args: argparse.Namespace) -> int:
    """Run the breach monitor once (the daemon runs it every minute), then deliver."""
    runtime = context.runtime
    now = datetime.fromisoformat(args.now) if args.now else utcnow()
    if now.tzinfo is None:
        raise CommandError("--now needs a UTC offset, such as 2026-11-24T09:30+01:00")
    rules = runtime.rules
    domain = runtime.config.mail_domain or rules.default_address.address.rpartition("@")[2]
    report = run_monitor(runtime.engine, rules, now, domain)
    runtime.flush_outbox()
    console().print(f"escalated {report.escalated}, warned {report.warned}, response breaches "
                    f"{report.response_breaches}, resolution breaches "
                    f"{report.resolution_breaches}")
    return EX_OK


def ticket_respond(context: Context, args: argparse.Namespace) -> int:
    """Record the first response on a ticket (when it was answered outside maild)."""
    at = datetime.fromisoformat(args.at) if args.at else utcnow()
    if at.tzinfo is None:
        raise CommandError("--at needs a UTC offset, such as 2026-11-24T09:30+01:00")
    with Session(context.runtime.engine) as session:
        ticket = find_ticket(session, args.number)
        if at < ticket.created_at:
            raise CommandError(f"--at {local_time(at)} is before {ticket.number} existed "
                               f"(received {local_time(ticket.created_at)} {ZONE_LABEL})")
        if ticket.first_response_at is not None:
            console().print(f"{ticket.number} was already answered "
                            f"{local_time(ticket.first_response_at)}")
            return EX_OK
        ticket.first_response_at = at
        ticket.updated_at = utcnow()
        session.add(ticket)
        actor = _actor(args)
        record(session, ticket, actor=actor, kind="response", at=at, via="maild ticket respond")
        set_status(session, ticket, TicketStatus.ANSWERED, actor=actor, at=at,
                   reason="answered outside maild")
        session.commit()
        in_time = ticket.response_due is None or at <= ticket.response_due
        console().print(f"{ticket.number}: first response recorded {local_time(at)}"
                        + ("" if in_time else f", after the deadline "
                           f"{local_time(ticket.response_due)}"))
    return EX_OK
