"""Dates, times and opening hours in words, in Swedish and English, in local time."""

from __future__ import annotations

import re
from datetime import datetime
from zoneinfo import ZoneInfo

LOCAL_ZONE = ZoneInfo("Europe/Stockholm")

_WEEKDAYS = {
    "sv": ("måndag", "tisdag", "onsdag", "torsdag", "fredag", "lördag", "söndag"),
    "en": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
}
_MONTHS = {
    "sv": ("januari", "februari", "mars", "april", "maj", "juni", "juli", "augusti",
           "september", "oktober", "november", "december"),
    "en": ("January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December"),
}
_DAY_CODES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_DAY_RANGES = {
    "sv": {"mon-fri": "vardagar", "mon-sun": "alla dagar", "sat-sun": "helger"},
    "en": {"mon-fri": "weekdays", "mon-sun": "every day", "sat-sun": "weekends"},
}


def format_when(moment: datetime, language: str) -> str:
    """`moment` in local time in words: "tisdag 24 november kl. 11.00", "Tuesday ... at 11:00"."""
    local = moment.astimezone(LOCAL_ZONE)
    weekday = _WEEKDAYS[language][local.weekday()]
    month = _MONTHS[language][local.month - 1]
    if language == "sv":
        return f"{weekday} {local.day} {month} kl. {local:%H:%M}"
    return f"{weekday} {local.day} {month} at {local:%H:%M}"


def _day_words(days: str, language: str) -> str:
    if days in _DAY_RANGES[language]:
        return _DAY_RANGES[language][days]
    names = dict(zip(_DAY_CODES, _WEEKDAYS[language], strict=True))
    return re.sub(r"[a-z]{3}", lambda m: names.get(m.group(0), m.group(0)), days).replace(
        "-", "–")


def format_hours(hours: str, language: str) -> str:
    """Opening hours text in words: "vardagar 09:00–17:00" / "weekdays 09:00–17:00"."""
    if hours.strip() == "24/7":
        return "dygnet runt, alla dagar" if language == "sv" else "around the clock, every day"
    parts = []
    for part in hours.split(";"):
        days, _, span = part.strip().partition(" ")
        start, _, end = span.strip().partition("-")
        parts.append(f"{_day_words(days, language)} {start}–{end}")
    joiner = " och " if language == "sv" else " and "
    return joiner.join(parts)
