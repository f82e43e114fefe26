"""Closed days: public holidays from the `holidays` package plus planned closures.

The holiday text is empty (no holidays), a country code (`SE`: the public
holidays), or a country code with more of the package's categories for that
country (`SE+de_facto` adds midsommarafton, julafton and nyårsafton). Planned
closures are dates (`2026-11-27`) or inclusive ranges (`2026-07-13..2026-07-31`).
A closed day is closed from local midnight to midnight.
"""

from __future__ import annotations

import bisect
import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

import holidays as holiday_data

_PUBLIC = "public"


@lru_cache(maxsize=256)
def _holiday_names(country: str, categories: tuple[str, ...], year: int) -> Mapping[dt.date, str]:
    """The holidays of one country, categories and year, computed once per process.

    Names are in the country's own language (`Juldagen`), whatever the process locale.
    """
    language = holiday_data.country_holidays(country).default_language
    found = holiday_data.country_holidays(
        country, years=year, categories=categories, language=language
    )
    return {day: str(name) for day, name in found.items()}


def _parse_holidays(text: str) -> tuple[str | None, tuple[str, ...]]:
    """`SE+de_facto` as `("SE", ("public", "de_facto"))`; `""` as no country."""
    if not isinstance(text, str):
        raise ValueError(  # noqa: TRY004 - a wrong type in the rules is the admin's mistake
            f"holidays must be text such as 'SE' or 'SE+de_facto', got {text!r}"
        )
    parts = [part.strip() for part in text.strip().split("+")]
    if parts == [""]:
        return None, ()
    country = parts[0].upper()
    if not country:
        raise ValueError(f"holidays {text!r} names no country; write e.g. 'SE' or 'SE+de_facto'")
    if country not in holiday_data.list_supported_countries():
        raise ValueError(
            f"unknown holiday country '{parts[0]}' in {text!r}; use a country code the "
            "holidays package knows, e.g. SE"
        )
    supported = tuple(holiday_data.country_holidays(country).supported_categories)
    categories = [_PUBLIC]
    for part in parts[1:]:
        category = part.lower()
        if category not in supported:
            raise ValueError(
                f"unknown holiday category '{part}' for {country} in {text!r}; "
                f"{country} has: {', '.join(sorted(supported))}"
            )
        if category not in categories:
            categories.append(category)
    return country, tuple(categories)


def _parse_day(text: str, entry: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(
            f"closed day '{entry}' is not a date; write YYYY-MM-DD or a range "
            "YYYY-MM-DD..YYYY-MM-DD"
        ) from None


def _parse_closure(entry: str | dt.date) -> tuple[dt.date, dt.date]:
    """`2026-11-27` or `2026-07-13..2026-07-31` (both ends closed) as a (first, last) pair."""
    if isinstance(entry, str):
        first_text, dots, last_text = entry.partition("..")
        first = _parse_day(first_text, entry)
        last = _parse_day(last_text, entry) if dots else first
        if last < first:
            raise ValueError(f"closed range '{entry}' ends before it starts")
        return first, last
    if isinstance(entry, dt.date) and not isinstance(entry, dt.datetime):
        return entry, entry  # a TOML date: closed = [2026-11-27]
    raise ValueError(
        f"closed day {entry!r} is not a date; write YYYY-MM-DD or a range YYYY-MM-DD..YYYY-MM-DD"
    )


def _merge(ranges: list[tuple[dt.date, dt.date]]) -> tuple[tuple[dt.date, dt.date], ...]:
    """Sorted ranges with overlapping and adjacent ones joined."""
    merged: list[tuple[dt.date, dt.date]] = []
    for first, last in sorted(ranges):
        if merged and first <= merged[-1][1] + dt.timedelta(days=1):
            merged[-1] = (merged[-1][0], max(last, merged[-1][1]))
        else:
            merged.append((first, last))
    return tuple(merged)


@dataclass(frozen=True)
class ClosedDays:
    """Which local dates a calendar is closed: holidays of a country, and planned closures."""

    country: str | None = None
    categories: tuple[str, ...] = ()
    ranges: tuple[tuple[dt.date, dt.date], ...] = ()
    holidays_text: str = ""

    @classmethod
    def parse(cls, holidays: str = "", closed: Sequence[str | dt.date] = ()) -> ClosedDays:
        """Read the holiday text and planned closures; a ValueError explains a mistake."""
        country, categories = _parse_holidays(holidays)
        if isinstance(closed, str):
            closed = [closed]
        ranges = _merge([_parse_closure(entry) for entry in closed])
        return cls(country, categories, ranges, holidays.strip())

    def _closure(self, day: dt.date) -> tuple[dt.date, dt.date] | None:
        index = bisect.bisect_right(self.ranges, (day, dt.date.max)) - 1
        if index >= 0 and self.ranges[index][0] <= day <= self.ranges[index][1]:
            return self.ranges[index]
        return None

    def holiday(self, day: dt.date) -> str | None:
        """The name of the holiday on `day`, or None."""
        if self.country is None:
            return None
        return _holiday_names(self.country, self.categories, day.year).get(day)

    def is_closed(self, day: dt.date) -> bool:
        """True when `day` is a holiday or lies in a planned closure."""
        return self._closure(day) is not None or self.holiday(day) is not None

    def reason(self, day: dt.date) -> str | None:
        """Why `day` is closed (`Juldagen`, `closed 2026-07-13..2026-07-31`), or None."""
        name = self.holiday(day)
        if name is not None:
            return name
        closure = self._closure(day)
        if closure is None:
            return None
        first, last = closure
        return f"closed {first.isoformat()}" + (f"..{last.isoformat()}" if last != first else "")
