"""A policy's promises for one ticket: when action, response and resolution are due.

A priority may promise up to three things (ClickSend: "action within 30
minutes, answer within 2 hours"; ITSL: a first response, work started the same
day, a resolution). A queue the policy names in `[queue.ID]` may have its own
hours and targets (ClearOn's technical support: 06-23 every day, troubleshooting
within an hour); what it leaves out is the priority's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from maild.routing.model import Policy
from maild.sla.calendar import Calendar
from maild.sla.deadline import due


@dataclass(frozen=True)
class Terms:
    """The targets (as text) and the calendar that count for one priority in one queue."""

    calendar: Calendar
    response: str | None
    action: str | None
    resolution: str | None
    source: str
    """Where the terms come from: `priority P2`, or `queue tech` when the queue overrides."""


@dataclass(frozen=True)
class Deadlines:
    """The moments a ticket's promises fall due; None where nothing is promised."""

    response: datetime | None = None
    action: datetime | None = None
    resolution: datetime | None = None


def terms(policy: Policy, priority: str | None, queue: str | None = None) -> Terms | None:
    """The targets and calendar of `priority` (default: the policy's) in `queue`."""
    level = priority or policy.default_priority
    target = policy.targets.get(level)
    if target is None:
        return None
    service = policy.queue_services.get(queue or "")
    calendar = policy.calendar(level, queue)
    if service is None:
        return Terms(calendar, target.response, target.action, target.resolution,
                     f"priority {level}")
    return Terms(calendar,
                 service.response if service.response is not None else target.response,
                 service.action if service.action is not None else target.action,
                 service.resolution if service.resolution is not None else target.resolution,
                 f"priority {level} in queue {service.queue}")


def deadlines(policy: Policy, priority: str | None, received: datetime,
              queue: str | None = None) -> Deadlines:
    """The deadlines of a case of `priority` in `queue` received at `received`."""
    found = terms(policy, priority, queue)
    if found is None:
        return Deadlines()

    def when(text: str | None) -> datetime | None:
        return due(received, text, found.calendar) if text else None

    return Deadlines(response=when(found.response), action=when(found.action),
                     resolution=when(found.resolution))
