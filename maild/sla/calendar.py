"""A support calendar: a time zone, weekly opening hours and closed days.

Opening hours are local wall-clock times, so a day on which daylight saving
time changes still opens at 09:00 local time. All arithmetic is done on
instants in UTC: an open period is a pair of UTC instants, never a naive local
time plus a timedelta, so a period that spans a change is as long as it really
is (00:00-24:00 on 2026-03-29 in Stockholm lasts 23 hours).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from maild.sla.closures import ClosedDays
from maild.sla.hours import MINUTES_PER_DAY, WeeklyHours
from maild.sla.windows import Window, is_window, parse_windows, subtract

UTC = dt.UTC
DEFAULT_TIME_ZONE = "Europe/Stockholm"
SEARCH_DAYS = 3700
"""Closed days in a row (about ten years) after which a calendar counts as never open."""

Period = tuple[dt.datetime, dt.datetime]
"""A half-open open period as two aware UTC instants."""

_ONE_DAY = dt.timedelta(days=1)


def require_aware(moment: dt.datetime, what: str = "moment") -> None:
    """Refuse a naive datetime: without a UTC offset a moment is ambiguous."""
    if not isinstance(moment, dt.datetime):
        raise TypeError(f"{what} must be a datetime, got {type(moment).__name__}")
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{what} {moment.isoformat()} has no UTC offset; give an aware datetime")


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise ValueError(
            f"unknown time zone {name!r}; use an IANA name such as Europe/Stockholm"
        ) from None


@dataclass(frozen=True)
class Calendar:
    """When a support organisation is open: weekly hours in a time zone, minus closed days."""

    hours: WeeklyHours
    closed: ClosedDays
    tz: ZoneInfo
    windows: tuple[Window, ...] = ()
    """Planned maintenance windows (UTC instants), closed though inside the hours."""

    @classmethod
    def parse(
        cls,
        hours: str,
        holidays: str = "",
        closed: Sequence[str | dt.date] = (),
        tz: str = DEFAULT_TIME_ZONE,
    ) -> Calendar:
        """Build a calendar from its text forms; a ValueError says what is wrong in a sentence.

        `hours` is e.g. `mon-fri 09:00-17:00` or `24/7`, `holidays` is `""`, `SE` or
        `SE+de_facto`, `closed` lists dates and ranges (`2026-07-13..2026-07-31`) and
        maintenance windows with times (`2026-12-12 22:00..2026-12-13 04:00`).
        """
        zone = _zone(tz)
        if isinstance(closed, str):
            closed = [closed]
        days = [entry for entry in closed if not is_window(entry)]
        windows = [entry for entry in closed if is_window(entry)]
        return cls(WeeklyHours.parse(hours), ClosedDays.parse(holidays, days), zone,
                   parse_windows(windows, zone))

    # -- days -------------------------------------------------------------------------

    def _instant(self, day: dt.date, minutes: int) -> dt.datetime:
        """The UTC instant of a local wall-clock time (`24:00` is the next midnight).

        A wall-clock time skipped by a change to summer time is read with the
        offset before the change (02:30 on 2026-03-29 is 03:30 summer time); a
        repeated one is its first occurrence.
        """
        if minutes == MINUTES_PER_DAY:
            day, minutes = day + _ONE_DAY, 0
        local = dt.datetime.combine(day, dt.time(minutes // 60, minutes % 60), tzinfo=self.tz)
        return local.astimezone(UTC)

    def open_periods_on(self, day: dt.date) -> list[Period]:
        """The open periods of a local date, in UTC; empty when the day is closed."""
        spans = self.hours.spans(day.weekday())
        if not spans or self.closed.is_closed(day):
            return []
        periods = [(self._instant(day, start), self._instant(day, end)) for start, end in spans]
        periods = [(start, end) for start, end in periods if end > start]
        return subtract(periods, self.windows) if self.windows else periods

    def is_business_day(self, day: dt.date) -> bool:
        """True when the calendar is open at some time on the local date `day`."""
        return bool(self.open_periods_on(day))

    def closing_time(self, day: dt.date) -> dt.datetime | None:
        """When the local date `day` closes (the end of its last open period), or None."""
        periods = self.open_periods_on(day)
        return periods[-1][1].astimezone(self.tz) if periods else None

    def business_day_after(self, day: dt.date, count: int) -> dt.date:
        """The `count`-th business day after the local date `day` (1 = the next one)."""
        found = 0
        closed_in_a_row = 0
        while found < count:
            day += _ONE_DAY
            if self.is_business_day(day):
                found += 1
                closed_in_a_row = 0
            else:
                closed_in_a_row += 1
                if closed_in_a_row > SEARCH_DAYS:
                    raise ValueError(f"calendar {self.hours.text!r} never opens after {day}")
        return day

    def closed_reason(self, day: dt.date) -> str | None:
        """Why the local date `day` is closed although it has opening hours, or None."""
        return self.closed.reason(day)

    # -- moments ----------------------------------------------------------------------

    def local_date(self, moment: dt.datetime) -> dt.date:
        """The local date on which an aware moment lies."""
        require_aware(moment)
        return moment.astimezone(self.tz).date()

    def localize(self, moment: dt.datetime) -> dt.datetime:
        """A naive moment read as local time in this calendar's zone; an aware one converted."""
        if moment.tzinfo is None:
            return moment.replace(tzinfo=self.tz)
        return moment.astimezone(self.tz)

    def open_periods(
        self, moment: dt.datetime, until: dt.datetime | None = None
    ) -> Iterator[Period]:
        """The open periods from `moment` on, in order, in UTC; the first one may start at `moment`.

        Without `until` the iteration is endless (unless the calendar is closed for
        more than SEARCH_DAYS days in a row: then ValueError); with it, it stops
        before the first period that starts at or after `until`.
        """
        require_aware(moment)
        start = moment.astimezone(UTC)
        end = until.astimezone(UTC) if until is not None else None
        day = start.astimezone(self.tz).date() - _ONE_DAY
        closed_in_a_row = 0
        while True:
            periods = self.open_periods_on(day)
            for period_start, period_end in periods:
                if end is not None and period_start >= end:
                    return
                if period_end > start:
                    yield max(period_start, start), period_end
            if end is not None and self._instant(day + _ONE_DAY, 0) >= end:
                return
            if periods:
                closed_in_a_row = 0
            else:
                closed_in_a_row += 1
                if end is None and closed_in_a_row > SEARCH_DAYS:
                    raise ValueError(f"calendar {self.hours.text!r} never opens after {day}")
            day += _ONE_DAY

    def is_open(self, moment: dt.datetime) -> bool:
        """True when the calendar is open at the aware `moment` (open at 09:00, closed at 17:00)."""
        require_aware(moment)
        instant = moment.astimezone(UTC)
        day = instant.astimezone(self.tz).date()
        return any(
            start <= instant < end
            for previous in (day - _ONE_DAY, day)
            for start, end in self.open_periods_on(previous)
        )

    def next_opening(self, moment: dt.datetime) -> dt.datetime:
        """`moment` itself when open, else the next opening in the calendar's zone."""
        start, _ = next(self.open_periods(moment))
        if start == moment:
            return moment
        return start.astimezone(self.tz)

    # -- words ------------------------------------------------------------------------

    def describe(self, language: str = "en") -> str:
        """The calendar in one line for people: `mon-fri 09:00-17:00, closed on holidays (SE)`."""
        swedish = language == "sv"
        text = self.hours.describe(language)
        closures = [
            first.isoformat() if first == last else f"{first.isoformat()}..{last.isoformat()}"
            for first, last in self.closed.ranges
        ]
        if self.closed.country is not None:
            holidays = self.closed.holidays_text
            closures.insert(0, f"helgdagar ({holidays})" if swedish else f"holidays ({holidays})")
        if closures:
            joined = ", ".join(closures)
            text += f", stängt på {joined}" if swedish else f", closed on {joined}"
        if self.tz.key != DEFAULT_TIME_ZONE:
            text += f" ({self.tz.key})"
        return text
