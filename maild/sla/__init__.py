"""The SLA clock: support calendars, deadlines counted in open time, and penalty schedules.

- `hours`: weekly opening hours as text (`mon-fri 09:00-17:00`, `24/7`).
- `closures`: holidays from the `holidays` package (`SE`, `SE+de_facto`) and planned closures.
- `calendar`: `Calendar`, the two together in a time zone: is it open, when does it open.
- `deadline`: `due()` and `open_time_between()`, the definitions of issue 7.
- `penalty`: the fee reduction schedules of the agreements, as data.
"""

from maild.sla.calendar import Calendar
from maild.sla.closures import ClosedDays
from maild.sla.deadline import Target, due, open_time_between
from maild.sla.hours import WeeklyHours
from maild.sla.penalty import (
    BreachedCasesSchedule,
    Cap,
    PenaltySchedule,
    UptimeSchedule,
    monthly_uptime,
)

__all__ = [
    "BreachedCasesSchedule",
    "Calendar",
    "Cap",
    "ClosedDays",
    "PenaltySchedule",
    "Target",
    "UptimeSchedule",
    "WeeklyHours",
    "due",
    "monthly_uptime",
    "open_time_between",
]
