"""Dates, times and opening hours in words, in Swedish and English.

`format_when` gives local (Swedish) time for the team's own mail; what goes to
a customer says its zone: `format_when_in_zone` ("tisdag 24 november kl.
17:00 svensk tid", "Tuesday 24 November at 16:00 UK time (GMT)") and
`hours_in_words` ("helgfria vardagar 09:00–17:00 svensk tid").
"""

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


def format_when(moment: datetime, language: str, zone: ZoneInfo = LOCAL_ZONE) -> str:
    """`moment` in `zone` (Swedish time) in words: "tisdag 24 november kl. 11:00",
    "Tuesday 24 November at 11:00"."""
    local = moment.astimezone(zone)
    weekday = _WEEKDAYS[language][local.weekday()]
    month = _MONTHS[language][local.month - 1]
    if language == "sv":
        return f"{weekday} {local.day} {month} kl. {local:%H:%M}"
    return f"{weekday} {local.day} {month} at {local:%H:%M}"


# Zones with a name of their own; any other is "time in CITY".
_ZONE_NAMES = {
    "Europe/Stockholm": {"sv": "svensk tid", "en": "Swedish time"},
    "Europe/London": {"sv": "brittisk tid", "en": "UK time"},
    "Europe/Helsinki": {"sv": "finsk tid", "en": "Finnish time"},
    "Europe/Oslo": {"sv": "norsk tid", "en": "Norwegian time"},
    "Europe/Copenhagen": {"sv": "dansk tid", "en": "Danish time"},
    "UTC": {"sv": "UTC", "en": "UTC"},
}


def zone_words(zone: ZoneInfo, language: str) -> str:
    """The zone's name in words: "svensk tid", "UK time", "tid i New York", "New York time"."""
    known = _ZONE_NAMES.get(zone.key)
    if known is not None:
        return known[language]
    city = zone.key.rsplit("/", 1)[-1].replace("_", " ")
    return f"tid i {city}" if language == "sv" else f"{city} time"


def _abbreviation(local: datetime) -> str:
    """CET, CEST, GMT, BST, ... or UTC+05:30 where the zone has no letters for it."""
    name = local.tzname() or ""
    if name.isalpha():
        return name
    offset = local.utcoffset()
    minutes = int(offset.total_seconds() // 60) if offset is not None else 0
    sign = "+" if minutes >= 0 else "-"
    return f"UTC{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def format_when_in_zone(moment: datetime, language: str, zone: ZoneInfo) -> str:
    """`moment` in `zone` with the zone: "kl. 17:00 svensk tid", "at 17:00 Swedish time (CET)".

    Swedish text leaves out the abbreviation for Swedish time only.
    """
    local = moment.astimezone(zone)
    words = zone_words(zone, language)
    if language == "sv":
        suffix = words if zone.key == "Europe/Stockholm" else f"{words} ({_abbreviation(local)})"
    else:
        suffix = f"{words} ({_abbreviation(local)})" if zone.key != "UTC" else "UTC"
    return f"{format_when(moment, language, zone)} {suffix}"


def hours_in_words(hours: str, holidays: str, language: str, zone: ZoneInfo) -> str:
    """Opening hours for a customer, zone named: "helgfria vardagar 09:00–17:00 svensk tid".

    English: "weekdays 09:00–17:00 Swedish time, except Swedish public holidays";
    24/7 is "dygnet runt, alla dagar" / "around the clock, every day".
    """
    text = format_hours(hours, language)
    if hours.strip() == "24/7":
        return text
    if holidays:
        if language == "sv" and text.startswith("vardagar"):
            text = f"helgfria {text}"
        elif language == "sv":
            text = f"{text} utom helgdagar"
        else:
            country = holidays.split("+", 1)[0].upper()
            public = "Swedish public holidays" if country == "SE" else "public holidays"
            return f"{text} {zone_words(zone, language)}, except {public}"
    return f"{text} {zone_words(zone, language)}"


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
