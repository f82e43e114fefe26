"""`maild sla due|report|check` and `maild ticket respond`: the SLA clock for admins."""

from __future__ import annotations

import argparse
import csv
import io
import sys
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, or_
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
from maild.routing.model import Policy, Rules
from maild.sla import Calendar, Target, UptimeSchedule, due, monthly_uptime
from maild.sla.ledger import LedgerRow, month_ledger, parse_month, query_window
from maild.sla.monitor import run_monitor
from maild.sla.policy_clock import terms
from maild.tickets.lifecycle import set_status
from maild.tickets.responses import record_first_response


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
        if args.queue and args.queue not in rules.queues:
            raise CommandError(f"no queue '{args.queue}' (defined: {', '.join(rules.queues)})")
        found = terms(policy, priority, args.queue)
        if found is None:
            raise CommandError(f"policy '{policy.id}' has no priority '{priority}' "
                               f"(priorities: {', '.join(policy.priorities)})")
        calendar = found.calendar
        text = (found.resolution if args.resolution else found.action if args.action
                else found.response)
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


def _uptime_of(option: str, number: str) -> float:
    """A measured uptime in percent (0-100), or downtime minutes as uptime of a 30-day month."""
    if option == "downtime":
        return monthly_uptime(int(number.strip()))
    uptime = float(number)
    if not 0 <= uptime <= 100:  # NaN fails this too
        raise ValueError(number)
    return uptime


def _measures(values: list[str], option: str, rules: Rules) -> dict[str, float]:
    """`--uptime CUSTOMER=PERCENT` or `--downtime CUSTOMER=MINUTES` as uptimes in percent."""
    uptimes: dict[str, float] = {}
    example = "nordic-parcel=99.2" if option == "uptime" else "nordic-parcel=95"
    unit = "PERCENT" if option == "uptime" else "MINUTES"
    for value in values:
        customer, equals, number = value.partition("=")
        customer = customer.strip()
        if not equals or not customer:
            raise CommandError(f"--{option}: '{value}' is not CUSTOMER={unit}, such as {example}")
        if customer not in rules.customers:
            raise CommandError(f"--{option}: no customer '{customer}' (defined: "
                               f"{', '.join(rules.customers)})")
        if customer in uptimes:
            raise CommandError(f"--{option}: '{customer}' is given twice (or with both "
                               "--uptime and --downtime)")
        try:
            uptime = _uptime_of(option, number)
        except ValueError as error:
            expected = ("a percentage from 0 to 100" if option == "uptime"
                        else "a whole number of minutes, 0 or more")
            raise CommandError(f"--{option}: '{number}' for '{customer}' is not {expected}"
                               ) from error
        uptimes[customer] = uptime
    return uptimes


def _penalty(policy: Policy | None, row: LedgerRow, uptime: float | None
             ) -> tuple[float | None, Decimal | None, str]:
    """(percent, amount in money, basis) of one customer's month."""
    if policy is None or policy.penalty is None:
        return None, None, "no penalty schedule"
    schedule = policy.penalty
    if isinstance(schedule, UptimeSchedule):
        if uptime is None:
            return None, None, "uptime not given (--uptime CUSTOMER=PERCENT or --downtime " \
                "CUSTOMER=MINUTES)"
        measures: dict[str, Any] = {"uptime": uptime}
        basis = f"uptime {uptime:.3f} %".replace(".000 %", " %")
    else:
        measures = {"breaches": row.breaches}
        basis = f"{row.breaches} breached cases"
    percent = schedule.percent(**measures)
    amount = schedule.fee_reduction(**measures)
    if amount is not None and schedule.monthly_fee is not None:
        basis += f" of the monthly fee {schedule.monthly_fee.amount} " \
            f"{schedule.monthly_fee.currency}"
        if schedule.cap is not None and amount == schedule.cap.amount and percent > 0:
            basis += f", capped at {schedule.cap.amount} {schedule.cap.currency}"
    elif schedule.cap is not None and percent > 0:
        basis += f"; at most {schedule.cap.amount} {schedule.cap.currency} (no monthly_fee " \
            "configured, so the cap is not applied here)"
    return percent, amount, basis


def sla_report(context: Context, args: argparse.Namespace) -> int:
    """Per customer for one month of the policy's local calendar: cases, breaches, reduction."""
    rules = load_rules(context.config.rules_dir)
    try:
        year, month = parse_month(args.month)
    except ValueError as error:
        raise CommandError(f"--month: {error}") from error
    if args.customer and args.customer not in rules.customers:
        raise CommandError(f"--customer: no customer '{args.customer}' (defined: "
                           f"{', '.join(rules.customers)})")
    uptimes = _measures(args.uptime, "uptime", rules)
    for customer, uptime in _measures(getattr(args, "downtime", []), "downtime",
                                      rules).items():
        if customer in uptimes:
            raise CommandError(f"--downtime: '{customer}' is given twice (or with both "
                               "--uptime and --downtime)")
        uptimes[customer] = uptime
    now = utcnow()
    first, last = query_window(year, month)
    with Session(context.runtime.engine) as session:
        query = select(Ticket).where(
            col(Ticket.customer).is_not(None),
            or_(and_(col(Ticket.created_at) >= first, col(Ticket.created_at) < last),
                and_(col(Ticket.response_due) >= first, col(Ticket.response_due) < last),
                and_(col(Ticket.resolution_due) >= first, col(Ticket.resolution_due) < last)))
        if args.customer:
            query = query.where(col(Ticket.customer) == args.customer)
        rows = month_ledger(session.exec(query), rules, year, month, now)
    report = []
    for customer_id in sorted(set(rules.customers) | set(rows)):
        if args.customer and customer_id != args.customer:
            continue
        known = rules.customers.get(customer_id)
        row = rows.get(customer_id) or LedgerRow(customer_id, known.policy if known else None)
        policy = rules.policies.get(row.policy or "")
        if (known is not None and known.status in ("suspended", "no-agreement")) or (
                row.tickets and row.tickets == row.no_commitment):
            # suspended, no agreement, or no sender entitled: nothing was promised this month
            percent, amount, basis = None, None, "no commitment this month"
        else:
            percent, amount, basis = _penalty(policy, row, uptimes.get(customer_id))
        currency = (policy.penalty.monthly_fee.currency if policy and policy.penalty
                    and policy.penalty.monthly_fee else None)
        report.append({"customer": customer_id, "policy": row.policy, "tickets": row.tickets,
                       "responded_in_time": row.responded_in_time, "breaches": row.breaches,
                       "no_commitment": row.no_commitment,
                       "resolution_breaches": row.resolution_breaches,
                       "penalty_percent": percent,
                       "penalty_amount": str(amount.quantize(Decimal("0.01")))
                       if amount is not None else None,
                       "currency": currency, "penalty_basis": basis})
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
            console().print(f"no customers in the rules for {args.month}")
            return EX_OK
        print_table(f"SLA {args.month}", ["customer", "policy", "tickets", "in time",
                                          "breaches", "no commitment", "resolution missed",
                                          "penalty", "basis"], [
            [r["customer"], r["policy"], r["tickets"], r["responded_in_time"], r["breaches"],
             r["no_commitment"], r["resolution_breaches"],
             "-" if r["penalty_percent"] is None else
             f"{r['penalty_percent']:g} %" + (f" = {r['penalty_amount']} {r['currency']}"
                                              if r["penalty_amount"] is not None else ""),
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
        actor = _actor(args)
        cleared = ticket.response_breached_at is not None
        record_first_response(session, ticket, at=at, actor=actor, via="maild ticket respond")
        cleared = cleared and ticket.response_breached_at is None
        set_status(session, ticket, TicketStatus.ANSWERED, actor=actor, at=at,
                   reason="answered outside maild")
        session.commit()
        in_time = ticket.response_due is None or at <= ticket.response_due
        console().print(f"{ticket.number}: first response recorded {local_time(at)}"
                        + ("" if in_time else f", after the deadline "
                           f"{local_time(ticket.response_due)}")
                        + ("; in time, so the breach is cleared" if cleared else ""))
    return EX_OK
