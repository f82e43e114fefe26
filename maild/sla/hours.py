"""Weekly opening hours: the local wall-clock minutes a calendar is open on each weekday.

The text an admin writes is a list of clauses separated by `;`, each a set of
days and one or more time ranges, or `24/7`:

    mon-fri 09:00-17:00
    mon-thu 08:00-17:00; fri 08:00-15:00
    mon,wed,fri 09:00-12:00, 13:00-16:00
    mon-sun 06:00-23:00
    sat 10:00-24:00

Ranges are half-open (open at 09:00, closed at 17:00); `24:00` ends a day.
A range never crosses midnight: write `mon 22:00-24:00; tue 00:00-06:00`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MINUTES_PER_DAY = 24 * 60

_SWEDISH_DAY_NAMES = ("mån", "tis", "ons", "tor", "fre", "lör", "sön")
_FULL_DAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_RANGE = re.compile(r"^(\d{1,2})[:.](\d{2})-(\d{1,2})[:.](\d{2})$")
_EXAMPLE = "write e.g. 'mon-fri 09:00-17:00', 'mon-thu 08:00-17:00; fri 08:00-15:00' or '24/7'"

Span = tuple[int, int]
"""A half-open range of minutes after local midnight: (540, 1020) is 09:00-17:00."""


def format_minutes(minutes: int) -> str:
    """`540` as `09:00`, `1440` as `24:00`."""
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


@dataclass(frozen=True)
class WeeklyHours:
    """The open spans of each weekday, Monday first, sorted and never overlapping."""

    days: tuple[tuple[Span, ...], ...]
    text: str

    @property
    def always_open(self) -> bool:
        """True for `24/7`: every day open from 00:00 to 24:00."""
        return all(spans == ((0, MINUTES_PER_DAY),) for spans in self.days)

    def spans(self, weekday: int) -> tuple[Span, ...]:
        """The open spans of a weekday (0 = Monday)."""
        return self.days[weekday]

    @classmethod
    def parse(cls, text: str) -> WeeklyHours:
        """Read opening hours; a ValueError names the faulty part in a sentence."""
        if not isinstance(text, str):
            raise ValueError(  # noqa: TRY004 - a wrong type in the rules is the admin's mistake
                f"opening hours must be text, got {text!r}; {_EXAMPLE}"
            )
        stripped = " ".join(text.split())
        if not stripped:
            raise ValueError(f"no opening hours given; {_EXAMPLE}")
        if stripped.lower() == "24/7":
            return cls(days=((((0, MINUTES_PER_DAY),),) * 7), text=stripped)
        week: list[list[Span]] = [[] for _ in DAY_NAMES]
        clauses = [clause.strip() for clause in stripped.split(";")]
        if not any(clauses):
            raise ValueError(f"no opening hours in {text!r}; {_EXAMPLE}")
        for clause in clauses:
            if not clause:
                continue
            weekdays, spans = _parse_clause(clause, text)
            for weekday in weekdays:
                for span in spans:
                    _add_span(week[weekday], span, weekday, text)
        return cls(days=tuple(tuple(spans) for spans in week), text=stripped)

    def describe(self, language: str = "en") -> str:
        """The hours in words, consecutive days with equal hours grouped: `mon-fri 09:00-17:00`."""
        if self.always_open:
            return "dygnet runt, alla dagar" if language == "sv" else "around the clock, every day"
        names = _SWEDISH_DAY_NAMES if language == "sv" else DAY_NAMES
        parts: list[str] = []
        weekday = 0
        while weekday < 7:
            spans = self.days[weekday]
            last = weekday
            while last + 1 < 7 and self.days[last + 1] == spans:
                last += 1
            if spans:
                days = names[weekday] if last == weekday else f"{names[weekday]}-{names[last]}"
                ranges = ", ".join(f"{format_minutes(a)}-{format_minutes(b)}" for a, b in spans)
                parts.append(f"{days} {ranges}")
            weekday = last + 1
        return "; ".join(parts)


def _parse_clause(clause: str, text: str) -> tuple[list[int], list[Span]]:
    """Split `mon-fri 09:00-17:00` into its weekdays and spans."""
    digit = re.search(r"\d", clause)
    if digit is None:
        raise ValueError(f"'{clause}' in {text!r} has no hours; {_EXAMPLE}")
    days_text = "".join(clause[: digit.start()].split()).lower()
    times_text = "".join(clause[digit.start() :].split())
    if not days_text:
        raise ValueError(f"hours '{times_text}' in {text!r} name no days; {_EXAMPLE}")
    weekdays = _parse_days(days_text, text)
    spans = [_parse_range(part, text) for part in times_text.split(",") if part]
    if not spans:
        raise ValueError(f"'{clause}' in {text!r} has no hours; {_EXAMPLE}")
    return weekdays, spans


def _day_index(name: str, text: str) -> int:
    if name in DAY_NAMES:
        return DAY_NAMES.index(name)
    if name in _FULL_DAY_NAMES:
        return _FULL_DAY_NAMES.index(name)
    raise ValueError(f"unknown day '{name}' in {text!r}; days are {' '.join(DAY_NAMES)}")


def _parse_days(days_text: str, text: str) -> list[int]:
    """`mon-fri`, `mon,wed,fri`, `mon-wed,sat` or `fri-mon` (wrapping over the weekend)."""
    weekdays: list[int] = []
    for item in days_text.split(","):
        if not item:
            raise ValueError(f"empty day in '{days_text}' in {text!r}; {_EXAMPLE}")
        if "-" in item:
            first_name, _, last_name = item.partition("-")
            first, last = _day_index(first_name, text), _day_index(last_name, text)
            count = (last - first) % 7 + 1
            weekdays.extend((first + offset) % 7 for offset in range(count))
        else:
            weekdays.append(_day_index(item, text))
    return list(dict.fromkeys(weekdays))


def _parse_range(part: str, text: str) -> Span:
    """`09:00-17:00` (or `09.00-17.00`) as minutes after midnight."""
    match = _RANGE.match(part)
    if match is None:
        raise ValueError(
            f"'{part}' in {text!r} is not a time range; write HH:MM-HH:MM, e.g. 09:00-17:00"
        )
    start_hour, start_minute, end_hour, end_minute = (int(group) for group in match.groups())
    for hour, minute in ((start_hour, start_minute), (end_hour, end_minute)):
        if hour > 24 or minute > 59 or (hour == 24 and minute != 0):
            raise ValueError(
                f"'{hour:02d}:{minute:02d}' in {text!r} is not a time of day (00:00 to 24:00)"
            )
    start, end = start_hour * 60 + start_minute, end_hour * 60 + end_minute
    if start == MINUTES_PER_DAY:
        raise ValueError(f"'{part}' in {text!r} starts at 24:00; a range can only end there")
    if end == start:
        raise ValueError(f"'{part}' in {text!r} is empty: it ends where it starts")
    if end < start:
        raise ValueError(
            f"'{part}' in {text!r} ends before it starts; for hours across midnight write "
            "two ranges, e.g. 'mon 22:00-24:00; tue 00:00-06:00'"
        )
    return start, end


def _add_span(spans: list[Span], new: Span, weekday: int, text: str) -> None:
    """Insert a span into a day's sorted spans, joining touching ones, refusing overlaps."""
    for old in spans:
        if new[0] < old[1] and old[0] < new[1]:
            raise ValueError(
                f"{DAY_NAMES[weekday]} is given overlapping hours "
                f"{format_minutes(old[0])}-{format_minutes(old[1])} and "
                f"{format_minutes(new[0])}-{format_minutes(new[1])} in {text!r}"
            )
    spans.append(new)
    spans.sort()
    joined: list[Span] = []
    for span in spans:
        if joined and joined[-1][1] == span[0]:
            joined[-1] = (joined[-1][0], span[1])
        else:
            joined.append(span)
    spans[:] = joined
