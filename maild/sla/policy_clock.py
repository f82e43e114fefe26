"""A policy's promises for one ticket: when the response and the resolution are due."""

from __future__ import annotations

from datetime import datetime

from maild.routing.model import Policy
from maild.sla.deadline import due


def deadlines(policy: Policy, priority: str | None,
              received: datetime) -> tuple[datetime | None, datetime | None]:
    """(response due, resolution due) for a case of `priority` received at `received`."""
    target = policy.targets.get(priority or policy.default_priority)
    if target is None:
        return None, None
    calendar = policy.calendar(priority)
    response = due(received, target.response, calendar)
    resolution = due(received, target.resolution, calendar) if target.resolution else None
    return response, resolution
