"""Response and resolution deadlines counted in a calendar's open time.

The definitions (issue 7):

- A case received while the calendar is closed counts as received at the next
  opening: the *start*.
- A duration target (`30m`, `2h`, `48h`) is counted in open time only: the
  deadline is the first instant at which that much open time has passed since
  the start. A deadline that falls exactly on a closing time is that closing
  time. In a `24/7` calendar open time is real elapsed time.
- A business-day target `Nbd` ends at the closing time of the Nth business day
  after the business day of the start (the local date on which the start lies);
  `0bd` is the same business day: the closing time of the start's day (ITSL's
  "arbete påbörjas samma dag").
- `none` is no commitment: no deadline.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from maild.sla.calendar import Calendar, require_aware

_TARGET = re.compile(r"^(\d+)\s*(m|min|h|bd)$")
_EXAMPLE = ("write minutes, hours or business days such as 30m, 2h, 48h, 0bd (the same "
            "business day), 1bd, 5bd, or none")


@dataclass(frozen=True)
class Target:
    """A promised time: a duration of open time, a number of business days, or none."""

    text: str
    duration: dt.timedelta | None = None
    business_days: int | None = None

    @property
    def is_none(self) -> bool:
        """True for `none`: no commitment, so no deadline."""
        return self.duration is None and self.business_days is None

    @classmethod
    def parse(cls, text: str) -> Target:
        """Read `30m`, `2h`, `48h`, `1bd` or `none`; a ValueError explains a mistake."""
        if not isinstance(text, str):
            raise ValueError(f"target {text!r} is not text; {_EXAMPLE}")  # noqa: TRY004 - a wrong type in the rules is the admin's mistake
        normal = text.strip().lower()
        if normal == "none":
            return cls(normal)
        match = _TARGET.match(normal)
        if match is None:
            raise ValueError(f"unknown target {text!r}; {_EXAMPLE}")
        amount, unit = int(match.group(1)), match.group(2)
        if amount == 0 and unit != "bd":
            raise ValueError(f"target {text!r} is zero; {_EXAMPLE}")
        if unit == "bd":
            return cls(normal, business_days=amount)
        minutes = amount * 60 if unit == "h" else amount
        return cls(normal, duration=dt.timedelta(minutes=minutes))


def due(received: dt.datetime, target: str | Target, calendar: Calendar) -> dt.datetime | None:
    """The deadline of a case received at `received`, in the calendar's zone; None for `none`."""
    require_aware(received, "received time")
    spec = target if isinstance(target, Target) else Target.parse(target)
    if spec.is_none:
        return None
    start = calendar.next_opening(received)
    if spec.business_days is not None:
        day = calendar.business_day_after(calendar.local_date(start), spec.business_days)
        closing = calendar.closing_time(day)
        assert closing is not None  # a business day has an open period
        return closing
    assert spec.duration is not None
    remaining = spec.duration
    for period_start, period_end in calendar.open_periods(start):
        length = period_end - period_start
        if length >= remaining:
            return (period_start + remaining).astimezone(calendar.tz)
        remaining -= length
    raise AssertionError("open_periods never ends")  # pragma: no cover


def open_time_between(start: dt.datetime, end: dt.datetime, calendar: Calendar) -> dt.timedelta:
    """How much open time lies between two aware moments (zero when `end` is not after `start`)."""
    require_aware(start, "start")
    require_aware(end, "end")
    total = dt.timedelta()
    if end <= start:
        return total
    end_utc = end.astimezone(dt.UTC)
    for period_start, period_end in calendar.open_periods(start, until=end):
        total += min(period_end, end_utc) - period_start
    return total
