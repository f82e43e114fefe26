"""Planned maintenance windows: closed from a local time to a local time, not whole days.

An entry of a policy's `closed` list that carries times of day is a window:
`"2026-12-12 22:00..2026-12-13 04:00"` (or with `T` between date and time).
Both ends are local wall-clock times in the calendar's zone; the window is
half-open (closed at 22:00, open again at 04:00). The clock does not run in a
window, so a deadline moves on by the window's length, and a case received in
a window starts when it ends. Entries without times stay whole closed days
(`maild.sla.closures`).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from zoneinfo import ZoneInfo

Window = tuple[dt.datetime, dt.datetime]
"""A half-open closed window as two aware UTC instants."""

_MOMENT = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{1,2}:\d{2}(:\d{2})?$")


def is_window(entry: object) -> bool:
    """Whether a `closed` entry carries times of day (a window), not only dates."""
    if isinstance(entry, dt.datetime):
        return True
    if not isinstance(entry, str):
        return False
    first, _, last = entry.partition("..")
    return bool(_MOMENT.match(first.strip()) or _MOMENT.match(last.strip()))


def _moment(text: str, entry: str, zone: ZoneInfo) -> dt.datetime:
    if not _MOMENT.match(text.strip()):
        raise ValueError(f"maintenance window '{entry}' must give a date and a time at both "
                         "ends, such as '2026-12-12 22:00..2026-12-13 04:00'")
    local = dt.datetime.fromisoformat(text.strip().replace(" ", "T"))
    return local.replace(tzinfo=zone).astimezone(dt.UTC)


def parse_windows(entries: Sequence[str | dt.date], zone: ZoneInfo) -> tuple[Window, ...]:
    """The windows among `closed` entries, sorted and merged; a ValueError names a bad one."""
    windows: list[Window] = []
    for entry in entries:
        text = entry.isoformat(sep=" ") if isinstance(entry, dt.datetime) else str(entry)
        first, dots, last = text.partition("..")
        if not dots:
            raise ValueError(f"maintenance window '{text}' needs an end: write "
                             "'2026-12-12 22:00..2026-12-13 04:00'")
        start, end = _moment(first, text, zone), _moment(last, text, zone)
        if end <= start:
            raise ValueError(f"maintenance window '{text}' ends before it starts")
        windows.append((start, end))
    merged: list[Window] = []
    for start, end in sorted(windows):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return tuple(merged)


def subtract(periods: list[Window], windows: Sequence[Window]) -> list[Window]:
    """The open periods with every window cut out of them."""
    result = periods
    for window_start, window_end in windows:
        cut: list[Window] = []
        for start, end in result:
            if window_end <= start or end <= window_start:
                cut.append((start, end))
                continue
            if start < window_start:
                cut.append((start, window_start))
            if window_end < end:
                cut.append((window_end, end))
        result = cut
    return result
