"""`occurred_at`: the sender says when the problem happened.

Definition: one sentence of the sender's own text (quoted mail and
attribution lines such as "On 16/11/2026 15:30, X wrote:" are not read)
places the problem at a past point in time, by one of:

1. a past day or part of a day on its own: "igår", "i morse", "i måndags",
   "i förmiddags", "sedan i helgen", "för en timme sedan", "för två dagar
   sedan", "yesterday", "this morning", "earlier today", "last night", "since
   Friday (evening)", "last Monday", "since the weekend", "20 minutes ago";
2. today plus a clock time or an event verb: "idag 09:45", "sedan kl 13.30 idag",
   "at 13:50 today", "i eftermiddag, senast kl 16.20", "felet uppstod idag";
3. a clock time after "sedan"/"since" or with an event verb: "since 10:05",
   "sedan ca kl 10.15", "det hände kl 14.30";
4. a date that is not after the message's Date, with a clock time, "sedan"/
   "since" or an event verb: "2026-11-16 10:00", "16/11 kl. 10", "16.11 kl
   10", "sedan torsdagen den 12 november", "exported 2026-11-19 at 06:30";
5. an English weekday with an event verb: "it failed on Monday", "it started
   Monday morning".

Rules 2-5 do not count in a sentence about the future or an absence
("imorgon", "nästa", "kommer att", "tills", "tillbaka", "will", "until",
"next", "scheduled"); dates after the message's own date never count, nor does
a clock time without a date that is later than the message was sent ("vi
uppdaterar i kväll kl 22" in a mail sent at 10).
Vague spans ("for the past week", "sedan förra veckan", "i september") and
"today" alone ("vi måste publicera en nyhet idag") are no point in time.
"""

from __future__ import annotations

import re
from datetime import date, datetime

from maild.checks.quoting import BodyParts
from maild.checks.result import ItemResult, found, missing
from maild.checks.sentences import split_sentences
from maild.parse import ParsedMail

ITEM = "occurred_at"
_FUTURE_WINDOW_DAYS = 183  # a date without a year further ahead than this was last year

_WEEKDAYS_EN = r"monday|tuesday|wednesday|thursday|friday|saturday|sunday"
_AGO_UNITS_SV = r"(?:minut(?:er)?|timm(?:e|ar)|halvtimme|dag(?:ar)?)"
_AGO_UNITS_EN = r"(?:minutes?|hours?|days?)"
_PAST_POINT = re.compile(
    r"\b(?:i\s?går|i\s?förrgår|i\s?morse|i\s?förmiddags|i\s?eftermiddags|"
    r"i\s(?:mån|tis|ons|tors|fre|lör|sön)dags|"
    r"yesterday|this\s+morning|earlier\s+today|earlier\s+this\s+(?:morning|afternoon)|"
    rf"last\s+night|since\s+(?:last\s+)?(?:{_WEEKDAYS_EN})|last\s+(?:{_WEEKDAYS_EN})|"
    r"sedan\s+i\s?helgen|since\s+the\s+weekend|"
    rf"(?:för\s+)?(?:en|ett|två|tre|fyra|fem|\d{{1,2}})\s+{_AGO_UNITS_SV}\s+sedan|"
    rf"(?:an?|one|two|three|four|five|\d{{1,2}})\s+{_AGO_UNITS_EN}\s+ago"
    r")\b", re.IGNORECASE)
_TODAY = re.compile(
    r"\b(?:idag|i\s+dag|today|i\s?eftermiddag|this\s+afternoon|i\s?förmiddag|i\s?kväll|"
    r"ikväll|tonight|i\s?natt|inatt)\b", re.IGNORECASE)
_SINCE = re.compile(r"\b(?:sedan|sen|since|från\s+och\s+med)\b", re.IGNORECASE)
_EVENT = re.compile(
    r"\b(?:hände|hänt|inträffade|inträffat|uppstod|uppstått|upptäckte|upptäcktes|upptäckt|"
    r"började|börjat|märkte|märktes|såg|sågs|slutade|slutat|dök\s+upp|kraschade|kraschat|"
    r"försvann|stannade|stannat|gick\s+ner|låg\s+nere|misslyckades|senast|"
    r"första\s+gången|först|"
    r"happened|occurred|started|began|noticed|saw|stopped|crashed|failed|went\s+down|"
    r"broke|first|last)\b", re.IGNORECASE)
_FUTURE = re.compile(
    r"\b(?:imorgon|i\s+morgon|tomorrow|nästa|next|kommer\s+att|will|ska|skall|"
    r"planera\w*|planned|scheduled|until|tills|tillbaka|back\s+on|inför|upcoming)\b",
    re.IGNORECASE)
_CLOCK = re.compile(
    r"\bkl(?:ockan)?\.?\s*(?:ca\.?\s*)?(?:[01]?\d|2[0-3])(?:[.:][0-5]\d)?\b"
    r"|\b(?:[01]?\d|2[0-3]):[0-5]\d\b"
    r"|\b(?:1[0-2]|0?[1-9])(?::[0-5]\d)?\s*(?:am|pm|a\.m\.|p\.m\.)",
    re.IGNORECASE)
_DIGIT = re.compile(r"\d")
_CLOCK_DIGITS = re.compile(r"(\d{1,2})(?:[.:](\d{2}))?")
_PM = re.compile(r"p\.?m", re.IGNORECASE)
_CLOCK_MARGIN_MINUTES = 30
# "at 9" is a time only next to other evidence; it widens the evidence shown.
_AT_HOUR = re.compile(r"\bat\s+(?:[01]?\d|2[0-3])\b", re.IGNORECASE)
_ON_WEEKDAY = re.compile(
    rf"\b(?:on\s+(?:{_WEEKDAYS_EN})|(?:{_WEEKDAYS_EN})\s+(?:morning|afternoon|evening|night))\b",
    re.IGNORECASE)

_MONTHS = {
    "januari": 1, "january": 1, "jan": 1, "februari": 2, "february": 2, "feb": 2,
    "mars": 3, "march": 3, "mar": 3, "april": 4, "apr": 4, "maj": 5, "May": 5,
    "juni": 6, "june": 6, "jun": 6, "juli": 7, "july": 7, "jul": 7,
    "augusti": 8, "august": 8, "aug": 8, "september": 9, "sept": 9, "sep": 9,
    "oktober": 10, "october": 10, "okt": 10, "oct": 10, "november": 11, "nov": 11,
    "december": 12, "dec": 12,
}
_MONTH_NAMES = "|".join(
    f"(?-i:{name})" if name == "May" else name
    for name in sorted(_MONTHS, key=len, reverse=True))
_DAY = r"(?P<d>0?[1-9]|[12]\d|3[01])"
# A month's name in a date has one of these stems, case-folded as the patterns ignore case
# (to them "ſep", with a long s, is "sep").
_MONTH_STEMS = ("jan", "feb", "mar", "apr", "maj", "may", "jun", "jul", "aug", "sep", "okt",
                "oct", "nov", "dec")
_MONTH = "month"
# Each date pattern with what every match of it has: a character, or `_MONTH`, a month's name.
# A sentence without it is not searched.
_DATES = (
    ("-", re.compile(r"\b(?P<y>20\d\d)-(?P<mo>0[1-9]|1[0-2])-(?P<d>0[1-9]|[12]\d|3[01])\b")),
    (".", re.compile(rf"\b{_DAY}\.(?P<mo>0?[1-9]|1[0-2])\.(?P<y>20\d\d)\b")),
    (".", re.compile(rf"\b{_DAY}\.(?P<mo>0?[1-9]|1[0-2])(?=\s*(?:kl|at)\b)", re.IGNORECASE)),
    # 16/11 needs a year, a clock time after it, or "den/on/since" before it ("24/7" is not a date)
    ("/", re.compile(
        rf"(?:(?<=\bden\s)|(?<=\bon\s)|(?<=\bsince\s)|(?<=\bsedan\s)|(?<=\bfrån\s)|"
        rf"(?<=\bfrom\s)|(?<=\bthe\s)|\b(?=\d{{1,2}}/\d{{1,2}}(?:/|\s*(?:kl|at)\b)))"
        rf"{_DAY}/(?P<mo>0?[1-9]|1[0-2])(?:/(?P<y>(?:20)?\d\d))?\b", re.IGNORECASE)),
    (_MONTH, re.compile(
        rf"\b{_DAY}(?::?[ea]|st|nd|rd|th)?\.?\s+(?:of\s+)?(?P<mon>{_MONTH_NAMES})\b\.?"
        rf"(?:\s+(?P<y>20\d\d)\b)?", re.IGNORECASE)),
    (_MONTH, re.compile(
        rf"\b(?P<mon>{_MONTH_NAMES})\.?\s+{_DAY}(?:st|nd|rd|th)?\b(?:,?\s+(?P<y>20\d\d)\b)?",
        re.IGNORECASE)),
)


def detect_occurred_at(mail: ParsedMail, body: BodyParts) -> ItemResult:
    """Present when one sentence of the sender's own text dates the problem in the past."""
    sent = mail.date
    for sentence in split_sentences(body.own):
        span = occurrence_in(sentence, sent)
        if span is not None:
            return found(ITEM, span)
    return missing(ITEM)


def occurrence_in(sentence: str, sent: datetime | None) -> str | None:
    """The words of `sentence` that place an event in the past (before `sent`), or None."""
    past = _PAST_POINT.search(sentence)
    if past is None and _DIGIT.search(sentence) is None and _TODAY.search(sentence) is None \
            and _ON_WEEKDAY.search(sentence) is None:
        return None  # every other point in time has a digit (a clock time, a date)
    all_clocks = list(_CLOCK.finditer(sentence))
    dates = _past_dates(sentence, sent)
    pieces: list[re.Match[str]] = [*all_clocks, *dates, *_AT_HOUR.finditer(sentence)]
    if past is not None:
        return _evidence(sentence, [past, *pieces])
    if _FUTURE.search(sentence):
        return None
    # Without a date a clock time is today's: one later than the message was sent is a plan.
    clocks = all_clocks if dates else [
        clock for clock in all_clocks if not _later_than_sent(clock.group(0), sent)]
    event = _EVENT.search(sentence) is not None
    since = _SINCE.search(sentence) is not None
    today = _TODAY.search(sentence)
    weekday = _ON_WEEKDAY.search(sentence)
    if today is not None and (clocks or event):
        return _evidence(sentence, [today, *pieces])
    if (clocks and (since or event or dates)) or (dates and (since or event)):
        return _evidence(sentence, pieces)
    if weekday is not None and event:
        return _evidence(sentence, [weekday, *pieces])
    return None


def _later_than_sent(clock: str, sent: datetime | None) -> bool:
    """Whether the time of day `clock` ("kl 22", "14:30", "2pm") is after `sent` (+ a margin)."""
    match = _CLOCK_DIGITS.search(clock)
    if sent is None or match is None:
        return False
    hour, minute = int(match.group(1)), int(match.group(2) or 0)
    if _PM.search(clock) and hour < 12:
        hour += 12
    return hour * 60 + minute > sent.hour * 60 + sent.minute + _CLOCK_MARGIN_MINUTES


def _past_dates(sentence: str, sent: datetime | None) -> list[re.Match[str]]:
    matches: list[re.Match[str]] = []
    if _DIGIT.search(sentence) is None:
        return matches  # every date has its day in digits
    named: bool | None = None
    for mark, pattern in _DATES:
        if mark == _MONTH:
            if named is None:
                folded = sentence.casefold()
                named = any(stem in folded for stem in _MONTH_STEMS)
            if not named:
                continue
        elif mark not in sentence:
            continue
        for match in pattern.finditer(sentence):
            when = _date_of(match, sent)
            if when is not None and (sent is None or when <= sent.date()):
                matches.append(match)
    return matches


def _date_of(match: re.Match[str], sent: datetime | None) -> date | None:
    groups = match.groupdict()
    day = int(groups["d"])
    if groups.get("mon"):
        name = groups["mon"]
        month = _MONTHS.get(name, _MONTHS.get(name.lower(), 0))
    else:
        month = int(groups["mo"])
    year_text = groups.get("y")
    reference = sent.date() if sent is not None else date.today()
    try:
        if year_text:
            year = int(year_text) + (2000 if len(year_text) == 2 else 0)
            return date(year, month, day)
        when = date(reference.year, month, day)
    except ValueError:
        return None
    if (when - reference).days > _FUTURE_WINDOW_DAYS:
        return date(reference.year - 1, month, day) if not (month == 2 and day == 29) else None
    return when


def _evidence(sentence: str, pieces: list[re.Match[str]]) -> str:
    """The stretch of `sentence` from the first to the last time expression (or the first)."""
    pieces = sorted(pieces, key=lambda match: match.start())
    start, end = pieces[0].start(), max(match.end() for match in pieces)
    if end - start > 60:
        end = pieces[0].end()
    return sentence[start:end].rstrip(" .,;:(")
