"""The monthly SLA ledger: per customer, its cases, the targets missed, and the reduction.

Months are the policy's local months: a case received at 00:30 on 1 December
Swedish time is a December case, though it is still November in UTC. A missed
target belongs to the month in which its deadline passed (Cloud Nine: "för den
månad tidsgränserna överskridits"): a case opened on 30 November whose response
was due on 1 December and not given counts in December's reduction.

- `tickets`: cases received in the month;
- `responded_in_time`: of those, the ones answered at or before their deadline;
- `no_commitment`: of those, the ones with no response promise;
- `breaches`: cases whose response deadline fell in the month and was missed
  (answered after it, or not answered by the time of the report). A response
  recorded later but given in time is no breach;
- `resolution_breaches`: cases whose resolution deadline fell in the month and
  passed with the case still open (reported, not part of the reduction).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from maild.models import Ticket
from maild.routing.model import Rules
from maild.sla.calendar import DEFAULT_TIME_ZONE


@dataclass
class LedgerRow:
    """One customer's month."""

    customer: str
    policy: str | None
    tickets: int = 0
    responded_in_time: int = 0
    breaches: int = 0
    no_commitment: int = 0
    resolution_breaches: int = 0


def parse_month(text: str) -> tuple[int, int]:
    """`2026-11` as (2026, 11); ValueError in a sentence for anything else."""
    try:
        moment = dt.datetime.strptime(text, "%Y-%m")
    except ValueError:
        raise ValueError(f"'{text}' is not a month such as 2026-11") from None
    return moment.year, moment.month


def month_bounds(year: int, month: int, zone: ZoneInfo) -> tuple[dt.datetime, dt.datetime]:
    """The first instant of the local month and of the next, in `zone`."""
    start = dt.datetime(year, month, 1, tzinfo=zone)
    end = dt.datetime(year + month // 12, month % 12 + 1, 1, tzinfo=zone)
    return start, end


def query_window(year: int, month: int) -> tuple[dt.datetime, dt.datetime]:
    """A UTC window wide enough for every time zone's local month (a day either side)."""
    start, end = month_bounds(year, month, ZoneInfo("UTC"))
    return start - dt.timedelta(days=1), end + dt.timedelta(days=1)


def _zone(rules: Rules, policy_id: str | None) -> ZoneInfo:
    policy = rules.policies.get(policy_id or "")
    return ZoneInfo(policy.timezone if policy else DEFAULT_TIME_ZONE)


def _within(moment: dt.datetime | None, bounds: tuple[dt.datetime, dt.datetime]) -> bool:
    return moment is not None and bounds[0] <= moment < bounds[1]


def response_missed(ticket: Ticket, now: dt.datetime) -> bool:
    """The response deadline passed without a response given by then."""
    due = ticket.response_due
    if due is None:
        return False
    if ticket.first_response_at is not None:
        return ticket.first_response_at > due
    return due <= now


def month_ledger(tickets: Iterable[Ticket], rules: Rules, year: int, month: int,
                 now: dt.datetime) -> dict[str, LedgerRow]:
    """The month's rows per customer, from tickets that may lie a day either side of it."""
    rows: dict[str, LedgerRow] = {}
    for ticket in tickets:
        if ticket.customer is None:
            continue
        bounds = month_bounds(year, month, _zone(rules, ticket.policy))
        customer = rules.customers.get(ticket.customer)
        row = rows.setdefault(ticket.customer, LedgerRow(
            ticket.customer, customer.policy if customer else ticket.policy))
        if _within(ticket.created_at, bounds):
            row.tickets += 1
            if ticket.response_due is None:
                row.no_commitment += 1
            elif ticket.first_response_at is not None and \
                    ticket.first_response_at <= ticket.response_due:
                row.responded_in_time += 1
        if _within(ticket.response_due, bounds) and response_missed(ticket, now):
            row.breaches += 1
        if (_within(ticket.resolution_due, bounds) and ticket.resolution_due is not None
                and ticket.resolution_due <= now
                and (ticket.closed_at is None or ticket.closed_at > ticket.resolution_due)):
            row.resolution_breaches += 1
    return rows
