"""Deadlines of the five seed policies, computed by hand from issue 7's definitions; penalties.

Every expected value below was worked out on paper from the definitions, not by
running the code:

- received while closed -> the start is the next opening;
- a duration counts open time only, and a deadline exactly at a closing time is
  that closing time;
- `Nbd` is the closing time of the Nth business day after the start's local date;
- in a 24/7 calendar a duration is real elapsed time, so across a change of
  daylight saving time the local clock reading moves by an hour more or less.

2026 facts used: Europe/Stockholm changes from +01:00 to +02:00 on Sunday 29 March
at 02:00 and back on Sunday 25 October at 03:00. Swedish public holidays (SE):
1 Jan (Thu), 6 Jan (Tue), 3 Apr (Good Friday), 5-6 Apr (Easter), 1 May (Fri),
14 May (Ascension, Thu), 6 Jun (Sat), 20 Jun (midsommardagen, Sat), 31 Oct (Sat),
25-26 Dec (Fri-Sat); 1 Jan 2027 is a Friday. SE+de_facto also closes 19 Jun
(midsommarafton, Fri), 24 Dec (julafton, Thu) and 31 Dec (nyårsafton, Thu).
"""

from __future__ import annotations

import datetime as dt
import tomllib
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from maild.sla import Calendar, PenaltySchedule, Target, due, monthly_uptime

POLICIES = Path(__file__).resolve().parent.parent / "rules" / "policies"

# The calendars as rules/policies/*.toml configure them (checked below), plus ClearOn's
# technical support (seed 000: "kl 06.00 - 23.00 samtliga dagar", troubleshooting
# started "inom en timme"), which has no policy file of its own yet.
CALENDARS: dict[str, tuple[str, str]] = {
    "office-p1-p5": ("mon-fri 08:00-17:00", "SE+de_facto"),
    "itil-p1-p4": ("mon-fri 08:00-17:00", "SE"),
    "care": ("mon-fri 09:00-17:00", "SE"),
    "campaign-service": ("mon-fri 09:00-17:00", "SE"),
    "around-the-clock": ("24/7", ""),
    "around-the-clock/non-urgent": ("mon-fri 09:00-17:00", "SE"),
    "clearon-technical": ("mon-sun 06:00-23:00", ""),
}

# (calendar, priority, target, received, expected due)
CASES: list[tuple[str, str, str, str, str]] = [
    # -- SoftOne office-p1-p5: mon-fri 08-17 (9 h a day), SE+de_facto -------------------
    ("office-p1-p5", "P1", "2h", "2026-11-24T09:00+01:00", "2026-11-24T11:00+01:00"),
    # night: starts at 08:00
    ("office-p1-p5", "P1", "2h", "2026-11-23T03:15+01:00", "2026-11-23T10:00+01:00"),
    # Saturday: starts Monday 08:00
    ("office-p1-p5", "P1", "2h", "2026-11-28T14:00+01:00", "2026-11-30T10:00+01:00"),
    # 1 h on Friday, 1 h on Monday
    ("office-p1-p5", "P1", "2h", "2026-11-27T16:00+01:00", "2026-11-30T09:00+01:00"),
    # the deadline falls exactly on the closing time: Friday 17:00, not Monday 08:00
    ("office-p1-p5", "P1", "2h", "2026-11-27T15:00+01:00", "2026-11-27T17:00+01:00"),
    # exact opening minute
    ("office-p1-p5", "P1", "2h", "2026-11-30T08:00+01:00", "2026-11-30T10:00+01:00"),
    # exact closing minute: closed (half-open), so the start is Tuesday 08:00
    ("office-p1-p5", "P1", "2h", "2026-11-30T17:00+01:00", "2026-12-01T10:00+01:00"),
    # one minute before closing: 1 min on Monday, 1 h 59 min on Tuesday
    ("office-p1-p5", "P1", "2h", "2026-11-30T16:59+01:00", "2026-12-01T09:59+01:00"),
    # 30 min on Thursday; midsommarafton (de_facto) and the weekend are closed
    ("office-p1-p5", "P1", "2h", "2026-06-18T16:30+02:00", "2026-06-22T09:30+02:00"),
    # received on midsommarafton: starts Monday 22 June 08:00
    ("office-p1-p5", "P2", "4h", "2026-06-19T10:00+02:00", "2026-06-22T12:00+02:00"),
    # 2 h on 23 Dec; julafton, juldagen, annandagen (Sat) and Sunday closed
    ("office-p1-p5", "P2", "4h", "2026-12-23T15:00+01:00", "2026-12-28T10:00+01:00"),
    # 8 h on 30 Dec; nyårsafton (de_facto), nyårsdagen (Fri) and the weekend closed
    ("office-p1-p5", "P3", "12h", "2026-12-30T09:00+01:00", "2027-01-04T12:00+01:00"),
    # 7 h on skärtorsdagen (a working day); Good Friday to Easter Monday closed
    ("office-p1-p5", "P3", "12h", "2026-04-02T10:00+02:00", "2026-04-07T13:00+02:00"),
    # 48 h across a weekend: 5 (Fri) + 9 + 9 + 9 + 9 (Mon-Thu) + 7 on Friday 27th
    ("office-p1-p5", "P4", "48h", "2026-11-20T12:00+01:00", "2026-11-27T15:00+01:00"),
    # 48 h across Easter: 1 (Thu 2 Apr) + 9 x 5 (7-10, 13 Apr) + 2 on Tuesday 14th
    ("office-p1-p5", "P5", "48h", "2026-04-02T16:00+02:00", "2026-04-14T10:00+02:00"),
    # 48 h from an opening: five full days (45 h) + 3 h
    ("office-p1-p5", "P5", "48h", "2026-11-23T08:00+01:00", "2026-11-30T11:00+01:00"),
    # 48 h ending exactly at a closing time: 3 + 9 x 5 = 48 at Monday 17:00
    ("office-p1-p5", "P4", "48h", "2026-11-23T14:00+01:00", "2026-11-30T17:00+01:00"),
    # the weekend of the spring change: 1 h Friday (+01), 1 h Monday (+02)
    ("office-p1-p5", "P1", "2h", "2026-03-27T16:00+01:00", "2026-03-30T09:00+02:00"),
    # the weekend of the autumn change: 5 h Friday (+02), 7 h Monday (+01)
    ("office-p1-p5", "P3", "12h", "2026-10-23T12:00+02:00", "2026-10-26T15:00+01:00"),
    # received on the day of the spring change itself (a Sunday)
    ("office-p1-p5", "P2", "4h", "2026-03-29T12:00+02:00", "2026-03-30T12:00+02:00"),
    # 1 h before Ascension Day, 1 h on the Friday after it
    ("office-p1-p5", "P1", "2h", "2026-05-13T16:00+02:00", "2026-05-15T09:00+02:00"),
    # trettondedag jul (Tue 6 Jan) closed
    ("office-p1-p5", "P2", "4h", "2026-01-05T15:00+01:00", "2026-01-07T10:00+01:00"),
    # -- ITSL itil-p1-p4: mon-fri 08-17, SE (the eves are working days) -------------------
    ("itil-p1-p4", "P1", "1h", "2026-11-24T16:30+01:00", "2026-11-25T08:30+01:00"),
    # resolution 8 h: 7 h on Monday, 1 h on Tuesday
    ("itil-p1-p4", "P1", "8h", "2026-11-23T10:00+01:00", "2026-11-24T09:00+01:00"),
    # resolution 8 h ending exactly at Monday's closing time
    ("itil-p1-p4", "P1", "8h", "2026-11-23T09:00+01:00", "2026-11-23T17:00+01:00"),
    # julafton is open with plain SE
    ("itil-p1-p4", "P1", "1h", "2026-12-24T10:00+01:00", "2026-12-24T11:00+01:00"),
    # nyårsafton open (30 min), nyårsdagen and the weekend closed
    ("itil-p1-p4", "P1", "1h", "2026-12-31T16:30+01:00", "2027-01-04T08:30+01:00"),
    # midsommarafton open (3 h); midsommardagen is a Saturday anyway
    ("itil-p1-p4", "P2", "4h", "2026-06-19T14:00+02:00", "2026-06-22T09:00+02:00"),
    # next working day: Tuesday's case is due Wednesday at closing
    ("itil-p1-p4", "P3", "1bd", "2026-11-24T10:00+01:00", "2026-11-25T17:00+01:00"),
    # Friday 16:59 is still Friday's business day: due Monday 17:00
    ("itil-p1-p4", "P3", "1bd", "2026-11-27T16:59+01:00", "2026-11-30T17:00+01:00"),
    # Friday 17:00 is closed: the start is Monday 08:00, so due Tuesday 17:00
    ("itil-p1-p4", "P3", "1bd", "2026-11-27T17:00+01:00", "2026-12-01T17:00+01:00"),
    # Saturday: start Monday, due Tuesday
    ("itil-p1-p4", "P3", "1bd", "2026-11-28T12:00+01:00", "2026-12-01T17:00+01:00"),
    # Thursday before Easter: Friday and Monday are holidays, so Tuesday 7 April
    ("itil-p1-p4", "P3", "1bd", "2026-04-02T11:00+02:00", "2026-04-07T17:00+02:00"),
    # 5 bd across Christmas: 22, 23, 24 (julafton open in SE), 28, 29 December
    ("itil-p1-p4", "P3", "5bd", "2026-12-21T10:00+01:00", "2026-12-29T17:00+01:00"),
    # evening of 23 Dec: start 24 Dec 08:00; then 28, 29, 30, 31 Dec and 4 Jan
    ("itil-p1-p4", "P3", "5bd", "2026-12-23T20:00+01:00", "2027-01-04T17:00+01:00"),
    # received on första maj (Fri): start Monday 4 May, due Wednesday 6 May
    ("itil-p1-p4", "P4", "2bd", "2026-05-01T09:00+02:00", "2026-05-06T17:00+02:00"),
    # resolution 2 bd over Ascension Day: Friday 15th and Monday 18th
    ("itil-p1-p4", "P2", "2bd", "2026-05-13T16:00+02:00", "2026-05-18T17:00+02:00"),
    # 2 bd over the spring change: Monday 30, Tuesday 31 March (summer time)
    ("itil-p1-p4", "P4", "2bd", "2026-03-27T12:00+01:00", "2026-03-31T17:00+02:00"),
    # 2 h on Friday (+02), 2 h on Monday (+01)
    ("itil-p1-p4", "P2", "4h", "2026-10-23T15:00+02:00", "2026-10-26T10:00+01:00"),
    ("itil-p1-p4", "P1", "1h", "2026-11-23T08:00+01:00", "2026-11-23T09:00+01:00"),
    ("itil-p1-p4", "P1", "1h", "2026-11-23T07:59+01:00", "2026-11-23T09:00+01:00"),
    # received on Easter Monday: start Tuesday 7 April, due Thursday 9 April
    ("itil-p1-p4", "P2", "2bd", "2026-04-06T10:00+02:00", "2026-04-09T17:00+02:00"),
    # -- Cloud Nine care: mon-fri 09-17, SE --------------------------------------------
    ("care", "High", "2h", "2026-11-24T09:00+01:00", "2026-11-24T11:00+01:00"),
    ("care", "High", "2h", "2026-11-24T08:59+01:00", "2026-11-24T11:00+01:00"),
    ("care", "High", "2h", "2026-11-24T16:00+01:00", "2026-11-25T10:00+01:00"),
    ("care", "High", "2h", "2026-11-24T15:00+01:00", "2026-11-24T17:00+01:00"),
    ("care", "High", "2h", "2026-11-24T17:00+01:00", "2026-11-25T11:00+01:00"),
    # "senast vardagen efter": the next weekday at closing
    ("care", "Normal", "1bd", "2026-11-24T13:00+01:00", "2026-11-25T17:00+01:00"),
    # received at closing: the start is Wednesday 09:00, so Thursday 17:00
    ("care", "Normal", "1bd", "2026-11-24T17:00+01:00", "2026-11-26T17:00+01:00"),
    # Sunday night: start Monday, due Tuesday
    ("care", "Normal", "1bd", "2026-11-29T22:00+01:00", "2026-12-01T17:00+01:00"),
    # care uses plain SE: julafton is a working day
    ("care", "Normal", "1bd", "2026-12-23T12:00+01:00", "2026-12-24T17:00+01:00"),
    ("care", "Normal", "1bd", "2026-12-24T12:00+01:00", "2026-12-28T17:00+01:00"),
    # 30 min on skärtorsdagen, 1 h 30 min on the Tuesday after Easter
    ("care", "High", "2h", "2026-04-02T16:30+02:00", "2026-04-07T10:30+02:00"),
    # nationaldagen on a Saturday: start Monday 8 June, due Tuesday 9 June
    ("care", "Normal", "1bd", "2026-06-06T10:00+02:00", "2026-06-09T17:00+02:00"),
    # midsommarafton open with SE: 1 h on Friday, 1 h on Monday
    ("care", "High", "2h", "2026-06-19T16:00+02:00", "2026-06-22T10:00+02:00"),
    ("care", "Normal", "1bd", "2026-05-13T10:00+02:00", "2026-05-15T17:00+02:00"),
    # alla helgons dag is Saturday 31 October; winter time again
    ("care", "High", "2h", "2026-10-30T16:00+01:00", "2026-11-02T10:00+01:00"),
    # Friday evening before the spring change: start Monday 09:00 summer time
    ("care", "Normal", "1bd", "2026-03-27T18:00+01:00", "2026-03-31T17:00+02:00"),
    # -- ClearOn campaign-service: mon-fri 09-17, SE, 2 h -------------------------------
    ("campaign-service", "Normal", "2h", "2026-11-23T02:00+01:00", "2026-11-23T11:00+01:00"),
    # the first 02:30 of the autumn change (a Sunday): Monday is in winter time
    ("campaign-service", "Normal", "2h", "2026-10-25T02:30+02:00", "2026-10-26T11:00+01:00"),
    ("campaign-service", "Normal", "2h", "2026-03-29T03:30+02:00", "2026-03-30T11:00+02:00"),
    # trettondedag jul (Tue 6 Jan) closed
    ("campaign-service", "Normal", "2h", "2026-01-06T11:00+01:00", "2026-01-07T11:00+01:00"),
    # 45 min on Friday 2 Jan, 1 h 15 min on Monday 5 Jan
    ("campaign-service", "Normal", "2h", "2026-01-02T16:15+01:00", "2026-01-05T10:15+01:00"),
    # nyårsafton open with SE: 1 h 30 min, then 30 min on 4 Jan
    ("campaign-service", "Normal", "2h", "2026-12-31T15:30+01:00", "2027-01-04T09:30+01:00"),
    # -- ClickSend around-the-clock, important: 24/7, real elapsed time -------------------
    # spring: 00:30 UTC + 2 h = 02:30 UTC = 04:30 summer time (the clock moves 3 h)
    ("around-the-clock", "important", "2h", "2026-03-29T01:30+01:00", "2026-03-29T04:30+02:00"),
    # 23:00 UTC + 2 h = 01:00 UTC, the very instant of the change: 03:00 summer time
    ("around-the-clock", "important", "2h", "2026-03-29T00:00+01:00", "2026-03-29T03:00+02:00"),
    ("around-the-clock", "important", "2h", "2026-03-29T01:59+01:00", "2026-03-29T04:59+02:00"),
    # still before the change: 22:30 UTC + 2 h = 00:30 UTC = 01:30 winter time
    ("around-the-clock", "important", "2h", "2026-03-28T23:30+01:00", "2026-03-29T01:30+01:00"),
    # autumn: 23:30 UTC + 2 h = 01:30 UTC = 02:30 winter time (the clock moves 1 h)
    ("around-the-clock", "important", "2h", "2026-10-25T01:30+02:00", "2026-10-25T02:30+01:00"),
    # the first 02:30 (summer time): 00:30 UTC + 2 h = 03:30 winter time
    ("around-the-clock", "important", "2h", "2026-10-25T02:30+02:00", "2026-10-25T03:30+01:00"),
    # the second 02:30 (winter time): 01:30 UTC + 2 h = 04:30 winter time
    ("around-the-clock", "important", "2h", "2026-10-25T02:30+01:00", "2026-10-25T04:30+01:00"),
    # holidays do not matter around the clock
    ("around-the-clock", "important", "2h", "2026-12-24T23:00+01:00", "2026-12-25T01:00+01:00"),
    ("around-the-clock", "important", "2h", "2026-06-20T12:00+02:00", "2026-06-20T14:00+02:00"),
    ("around-the-clock", "important", "2h", "2026-12-31T23:30+01:00", "2027-01-01T01:30+01:00"),
    # -- ClickSend around-the-clock, non-urgent: 8 business hours, mon-fri 09-17, SE ------
    # a full day ends exactly at closing time
    ("around-the-clock/non-urgent", "non-urgent", "8h",
     "2026-11-24T09:00+01:00", "2026-11-24T17:00+01:00"),
    ("around-the-clock/non-urgent", "non-urgent", "8h",
     "2026-11-24T09:01+01:00", "2026-11-25T09:01+01:00"),
    # 4 h on Friday in winter time, 4 h on Monday in summer time
    ("around-the-clock/non-urgent", "non-urgent", "8h",
     "2026-03-27T13:00+01:00", "2026-03-30T13:00+02:00"),
    ("around-the-clock/non-urgent", "non-urgent", "8h",
     "2026-10-25T10:00+01:00", "2026-10-26T17:00+01:00"),
    # 2 h on skärtorsdagen, 6 h on the Tuesday after Easter
    ("around-the-clock/non-urgent", "non-urgent", "8h",
     "2026-04-02T15:00+02:00", "2026-04-07T15:00+02:00"),
    # julafton open with SE (3 h), then 5 h on Monday 28 December
    ("around-the-clock/non-urgent", "non-urgent", "8h",
     "2026-12-24T14:00+01:00", "2026-12-28T14:00+01:00"),
    ("around-the-clock/non-urgent", "non-urgent", "8h",
     "2026-06-19T09:00+02:00", "2026-06-19T17:00+02:00"),
    # -- ClearOn technical support: mon-sun 06-23, no holidays, 1 h ------------------------
    ("clearon-technical", "technical", "1h", "2026-11-28T03:00+01:00", "2026-11-28T07:00+01:00"),
    ("clearon-technical", "technical", "1h", "2026-11-24T22:30+01:00", "2026-11-25T06:30+01:00"),
    ("clearon-technical", "technical", "1h", "2026-11-24T22:00+01:00", "2026-11-24T23:00+01:00"),
    ("clearon-technical", "technical", "1h", "2026-11-24T23:00+01:00", "2026-11-25T07:00+01:00"),
    ("clearon-technical", "technical", "1h", "2026-11-24T06:00+01:00", "2026-11-24T07:00+01:00"),
    # night of the spring change: Sunday opens at 06:00 summer time
    ("clearon-technical", "technical", "1h", "2026-03-29T01:00+01:00", "2026-03-29T07:00+02:00"),
    # 30 min on Saturday (+02), 30 min from 06:00 on Sunday (+01)
    ("clearon-technical", "technical", "1h", "2026-10-24T22:30+02:00", "2026-10-25T06:30+01:00"),
    ("clearon-technical", "technical", "1h", "2026-12-24T12:00+01:00", "2026-12-24T13:00+01:00"),
    ("clearon-technical", "technical", "1h", "2026-12-31T22:45+01:00", "2027-01-01T06:45+01:00"),
]

_CALENDAR_CACHE: dict[str, Calendar] = {}


def calendar(name: str) -> Calendar:
    if name not in _CALENDAR_CACHE:
        hours, holidays = CALENDARS[name]
        _CALENDAR_CACHE[name] = Calendar.parse(hours, holidays)
    return _CALENDAR_CACHE[name]


def test_there_are_enough_cases() -> None:
    assert len(CASES) >= 60
    assert len({(name, target, received) for name, _, target, received, _ in CASES}) == len(CASES)


@pytest.mark.parametrize(
    ("name", "priority", "target", "received", "expected"),
    CASES,
    ids=[f"{name}-{priority}-{target}-{received}" for name, priority, target, received, _ in CASES],
)
def test_deadline(name: str, priority: str, target: str, received: str, expected: str) -> None:
    found = due(dt.datetime.fromisoformat(received), target, calendar(name))
    assert found is not None
    assert found.isoformat() == dt.datetime.fromisoformat(expected).isoformat()
    assert found.tzinfo == calendar(name).tz


def _policy(name: str) -> dict[str, Any]:
    with (POLICIES / f"{name}.toml").open("rb") as file:
        return tomllib.load(file)


@pytest.mark.parametrize(
    ("name", "priority", "target"),
    sorted({(name, priority, target) for name, priority, target, _, _ in CASES
            if name != "clearon-technical"}),
)
def test_the_table_matches_the_policy_files(name: str, priority: str, target: str) -> None:
    """The calendars and targets above are the ones rules/policies/*.toml configure."""
    policy_name = name.partition("/")[0]
    policy = _policy(policy_name)
    levels = policy["priority"][priority]
    assert target in (levels.get("response"), levels.get("resolution"))
    hours = levels.get("hours", policy["hours"])
    holidays = levels.get("holidays", policy["holidays"])
    assert (hours, holidays) == CALENDARS[name]


def test_none_means_no_deadline() -> None:
    policy = _policy("no-agreement")
    assert policy["priority"]["Normal"]["response"] == "none"
    no_agreement = Calendar.parse(policy["hours"], policy["holidays"])
    assert due(dt.datetime.fromisoformat("2026-11-24T10:00+01:00"), "none", no_agreement) is None
    assert due(dt.datetime.fromisoformat("2026-11-24T10:00+01:00"), " None ", no_agreement) is None


def test_received_in_another_zone_gives_the_calendar_zone() -> None:
    found = due(dt.datetime(2026, 11, 24, 8, 0, tzinfo=dt.UTC), "2h", calendar("care"))
    assert found is not None
    assert found.isoformat() == "2026-11-24T11:00:00+01:00"


def test_thirty_minutes_and_target_objects() -> None:
    care = calendar("care")
    received = dt.datetime.fromisoformat("2026-11-24T16:45+01:00")
    assert due(received, "30m", care) == dt.datetime.fromisoformat("2026-11-25T09:15+01:00")
    assert due(received, Target.parse("30m"), care) == due(received, "30m", care)
    assert Target.parse(" 2H ").duration == dt.timedelta(hours=2)
    assert Target.parse("5bd").business_days == 5
    assert Target.parse("none").is_none


@pytest.mark.parametrize("target", ["2 hours", "48", "1d", "0h", "0m", "-2h", "", "h", "1.5h"])
def test_malformed_targets(target: str) -> None:
    with pytest.raises(ValueError, match=r"write minutes, hours or business days such as 30m"):
        due(dt.datetime.fromisoformat("2026-11-24T10:00+01:00"), target, calendar("care"))


def test_target_error_sentence() -> None:
    with pytest.raises(ValueError) as raised:
        Target.parse("2 hours")
    assert str(raised.value) == (
        "unknown target '2 hours'; write minutes, hours or business days such as "
        "30m, 2h, 48h, 0bd (the same business day), 1bd, 5bd, or none"
    )


def test_naive_received_is_refused() -> None:
    with pytest.raises(ValueError, match="received time 2026-11-24T10:00:00 has no UTC offset"):
        due(dt.datetime(2026, 11, 24, 10, 0), "2h", calendar("care"))


def test_planned_closure_moves_a_deadline() -> None:
    summer = Calendar.parse("mon-fri 09:00-17:00", "SE", ["2026-07-13..2026-07-31"])
    received = dt.datetime.fromisoformat("2026-07-10T16:00+02:00")
    # 1 h on Friday 10 July, three closed weeks, 1 h on Monday 3 August
    assert due(received, "2h", summer) == dt.datetime.fromisoformat("2026-08-03T10:00+02:00")
    assert due(received, "1bd", summer) == dt.datetime.fromisoformat("2026-08-03T17:00+02:00")


def test_business_days_in_an_uneven_week() -> None:
    short_friday = Calendar.parse("mon-thu 08:00-17:00; fri 08:00-15:00", "SE")
    received = dt.datetime.fromisoformat("2026-11-26T10:00+01:00")
    # the closing time of Friday is 15:00
    assert due(received, "1bd", short_friday) == dt.datetime.fromisoformat(
        "2026-11-27T15:00+01:00"
    )


# -- penalties ---------------------------------------------------------------------------

CLOUD_NINE = """
# Seed 004: "För det fall som Cloud Nine inte svarat inom gällande tidsgräns görs på
# begäran avdrag på månadsavgiften för avtalad servicenivå för den månad
# tidsgränserna överskridits enligt följande: 0-1 ärende 10% nedsättning,
# 2-10 ärenden 50% nedsättning, > 10 ärenden 100% nedsättning"
[penalty]
kind = "breached-cases"
steps = [
  { from = 1, to = 1, percent = 10 },
  { from = 2, to = 10, percent = 50 },
  { from = 11, percent = 100 },
]
"""

CLICKSEND = """
# Seed 002: "Uptime (Monthly %) Rebate Schedule <100 5% <99 10% <98 25% <97 50%
# <96 75% <95 100%" ... "dock högst $125 eller motsvarande"
[penalty]
kind = "uptime"
steps = [
  { below = 100, percent = 5 },
  { below = 99, percent = 10 },
  { below = 98, percent = 25 },
  { below = 97, percent = 50 },
  { below = 96, percent = 75 },
  { below = 95, percent = 100 },
]
cap = { amount = 125, currency = "USD" }
"""


def schedule(text: str) -> PenaltySchedule:
    return PenaltySchedule.parse(tomllib.loads(text)["penalty"])


@pytest.mark.parametrize(
    ("breaches", "percent"),
    [(0, 0), (1, 10), (2, 50), (10, 50), (11, 100), (250, 100)],
)
def test_cloud_nine_reduction_by_breached_cases(breaches: int, percent: float) -> None:
    assert schedule(CLOUD_NINE).percent(breaches=breaches) == percent


def test_the_seeds_literal_zero_to_one_step_still_gives_nothing_without_a_breach() -> None:
    literal = CLOUD_NINE.replace("{ from = 1, to = 1", "{ from = 0, to = 1")
    assert schedule(literal).percent(breaches=0) == 0
    assert schedule(literal).percent(breaches=1) == 10


@pytest.mark.parametrize(
    ("uptime", "percent"),
    [
        (100, 0),
        (99.95, 5),
        (99.0, 5),     # "<99" is strict: exactly 99 % is still the 5 % step
        (98.99, 10),
        (97.5, 25),
        (95.0, 75),
        (94.999, 100),
        (94.0, 100),
        (0, 100),
    ],
)
def test_clicksend_rebate_by_uptime(uptime: float, percent: float) -> None:
    assert schedule(CLICKSEND).percent(uptime=uptime) == percent


def test_clicksend_cap_limits_the_amount() -> None:
    clicksend = schedule(CLICKSEND)
    # 100 % of a 500 USD month is more than the 125 USD cap
    assert clicksend.amount(Decimal(500), "USD", uptime=94.0) == Decimal(125)
    # 5 % of 1000 USD is 50 USD, under the cap
    assert clicksend.amount(Decimal(1000), "USD", uptime=99.5) == Decimal(50)
    assert clicksend.amount(Decimal(1000), "usd", uptime=100) == Decimal(0)
    with pytest.raises(ValueError, match="the penalty cap is in USD but the fee is in SEK"):
        clicksend.amount(Decimal(1000), "SEK", uptime=94.0)
    # no cap: the whole percent
    assert schedule(CLOUD_NINE).amount(Decimal(4000), "SEK", breaches=3) == Decimal(2000)


def test_monthly_uptime_from_downtime_minutes() -> None:
    # a 30-day month has 43 200 minutes; 432 minutes down is exactly 1 %
    assert monthly_uptime(0) == 100.0
    assert monthly_uptime(432) == 99.0
    assert schedule(CLICKSEND).percent(uptime=monthly_uptime(432)) == 5
    assert schedule(CLICKSEND).percent(uptime=monthly_uptime(433)) == 10
    assert monthly_uptime(100_000) == 0.0


def _errors(text: str) -> str:
    with pytest.raises(ValueError) as raised:
        schedule(text)
    return str(raised.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[penalty]\nkind = "count"\nsteps = []',
         "penalty: unknown kind 'count'; use 'breached-cases' or 'uptime'"),
        ('[penalty]\nkind = "uptime"',
         "penalty: 'steps' must be a non-empty list of tables"),
        ('[penalty]\nkind = "breached-cases"\nsteps = [{ from = 1, to = 1, percent = 10 }, '
         '{ from = 3, percent = 50 }]',
         "penalty steps leave 2 breached cases without a percent"),
        ('[penalty]\nkind = "breached-cases"\nsteps = [{ from = 1, to = 5, percent = 10 }, '
         '{ from = 3, percent = 50 }]',
         "penalty steps overlap: 1-5 and 3 or more breached cases"),
        ('[penalty]\nkind = "breached-cases"\nsteps = [{ from = 1, to = 10, percent = 10 }]',
         "the last penalty step ends at 10 breached cases; leave out its 'to' so that more "
         "cases also have a percent, e.g. { from = 11, percent = 100 }"),
        ('[penalty]\nkind = "breached-cases"\nsteps = [{ from = 1, percent = 110 }]',
         "penalty step 1: 'percent' must be a number from 0 to 100, got 110"),
        ('[penalty]\nkind = "breached-cases"\nsteps = [{ from = 1, percent = true }]',
         "penalty step 1: 'percent' must be a number from 0 to 100, got True"),
        ('[penalty]\nkind = "breached-cases"\nsteps = [{ from = -1, percent = 10 }]',
         "penalty step 1: 'from' must be a whole number of at least 0, got -1"),
        ('[penalty]\nkind = "breached-cases"\nsteps = [{ from = 5, to = 2, percent = 10 }]',
         "penalty step 1: 'to' must be a whole number of at least 'from' (5), got 2"),
        ('[penalty]\nkind = "breached-cases"\nsteps = [{ from = 1, upto = 3, percent = 10 }]',
         "penalty step 1: unknown key 'upto'; allowed are from, to, percent"),
        ('[penalty]\nkind = "uptime"\nsteps = [{ below = 100, percent = 5 }]\nlimit = 3',
         "penalty: unknown key 'limit'; allowed are kind, steps, cap, monthly_fee"),
        ('[penalty]\nkind = "uptime"\nsteps = [{ below = 100, percent = 50 }, '
         '{ below = 98, percent = 25 }]',
         "penalty steps: below 98 % uptime gives 25 %, less than the 50 % below 100 %; "
         "a lower uptime must not give a smaller rebate"),
        ('[penalty]\nkind = "uptime"\nsteps = [{ below = 99, percent = 5 }, '
         '{ below = 99, percent = 10 }]',
         "penalty steps: 'below = 99' is given twice"),
        ('[penalty]\nkind = "uptime"\nsteps = [{ below = 101, percent = 5 }]',
         "penalty step 1: 'below' must be an uptime percentage above 0 and at most 100, "
         "got 101"),
        ('[penalty]\nkind = "uptime"\nsteps = [{ below = 100, percent = 5 }]\n'
         'cap = { amount = 125, currency = "dollars" }',
         "penalty cap: 'currency' must be a three-letter code such as SEK or USD, "
         "got 'dollars'"),
        ('[penalty]\nkind = "uptime"\nsteps = [{ below = 100, percent = 5 }]\ncap = 125',
         "penalty: 'cap' must be a table such as { amount = 125, currency = \"USD\" }, got 125"),
    ],
)
def test_penalty_errors_are_sentences(text: str, message: str) -> None:
    assert _errors(text) == message


def test_penalty_needs_the_right_measure() -> None:
    with pytest.raises(ValueError, match="counts breached cases; give breaches"):
        schedule(CLOUD_NINE).percent(uptime=99.0)
    with pytest.raises(ValueError, match="is by uptime; give uptime in percent"):
        schedule(CLICKSEND).percent(breaches=3)
    with pytest.raises(ValueError, match="is by uptime"):
        schedule(CLICKSEND).percent(uptime=100.5)
