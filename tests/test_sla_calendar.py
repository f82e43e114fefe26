"""Support calendars: opening hours as text, Swedish holidays, planned closures, DST days."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from maild.sla import Calendar, WeeklyHours, open_time_between
from maild.sla.calendar import Calendar as CalendarClass

STOCKHOLM = ZoneInfo("Europe/Stockholm")
ALL_DAYS = "mon-sun 00:00-24:00"


def at(text: str) -> dt.datetime:
    """An ISO moment; without an offset it is read as Stockholm time."""
    moment = dt.datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=STOCKHOLM)


def minutes(text: str) -> tuple[int, int]:
    start, end = text.split("-")
    hours_a, minutes_a = start.split(":")
    hours_b, minutes_b = end.split(":")
    return int(hours_a) * 60 + int(minutes_a), int(hours_b) * 60 + int(minutes_b)


# -- opening hours as text ------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "week"),
    [
        ("mon-fri 09:00-17:00", ["09:00-17:00"] * 5 + [None, None]),
        ("mon-sun 06:00-23:00", ["06:00-23:00"] * 7),
        (
            "mon-thu 08:00-17:00; fri 08:00-15:00",
            ["08:00-17:00"] * 4 + ["08:00-15:00", None, None],
        ),
        ("mon,wed,fri 09:00-12:00", ["09:00-12:00", None, "09:00-12:00", None,
                                     "09:00-12:00", None, None]),
        ("sat 10:00-24:00", [None] * 5 + ["10:00-24:00", None]),
        ("Mon-Fri 09.00-17.00", ["09:00-17:00"] * 5 + [None, None]),  # as the seeds write it
        ("fri-mon 10:00-14:00", ["10:00-14:00", None, None, None] + ["10:00-14:00"] * 3),
        ("  mon - fri   09:00 - 17:00 ;  ", ["09:00-17:00"] * 5 + [None, None]),
        ("monday-friday 09:00-17:00", ["09:00-17:00"] * 5 + [None, None]),
    ],
)
def test_hours_forms(text: str, week: list[str | None]) -> None:
    hours = WeeklyHours.parse(text)
    assert hours.days == tuple(() if day is None else (minutes(day),) for day in week)
    assert not hours.always_open


def test_twenty_four_seven_is_every_minute_of_every_day() -> None:
    hours = WeeklyHours.parse("24/7")
    assert hours.always_open
    assert hours.days == (((0, 1440),),) * 7


def test_several_ranges_per_day_and_touching_ranges_join() -> None:
    hours = WeeklyHours.parse("mon-fri 08:00-12:00, 13:00-17:00")
    assert hours.spans(0) == ((480, 720), (780, 1020))
    joined = WeeklyHours.parse("mon 00:00-12:00; mon 12:00-24:00")
    assert joined.spans(0) == ((0, 1440),)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "mnd-fri 09:00-17:00",
            "unknown day 'mnd' in 'mnd-fri 09:00-17:00'; days are mon tue wed thu fri sat sun",
        ),
        ("", "no opening hours given; write e.g. 'mon-fri 09:00-17:00', "
             "'mon-thu 08:00-17:00; fri 08:00-15:00' or '24/7'"),
        ("mon-fri 9-17", "'9-17' in 'mon-fri 9-17' is not a time range; write HH:MM-HH:MM, "
                         "e.g. 09:00-17:00"),
        ("mon-fri 17:00-09:00", "'17:00-09:00' in 'mon-fri 17:00-09:00' ends before it starts; "
                                "for hours across midnight write two ranges, "
                                "e.g. 'mon 22:00-24:00; tue 00:00-06:00'"),
        ("mon-fri 09:00-09:00", "'09:00-09:00' in 'mon-fri 09:00-09:00' is empty: "
                                "it ends where it starts"),
        ("mon-fri 09:00-25:00", "'25:00' in 'mon-fri 09:00-25:00' is not a time of day "
                                "(00:00 to 24:00)"),
        ("mon-fri 09:60-17:00", "'09:60' in 'mon-fri 09:60-17:00' is not a time of day "
                                "(00:00 to 24:00)"),
        ("mon 09:00-24:30", "'24:30' in 'mon 09:00-24:30' is not a time of day "
                            "(00:00 to 24:00)"),
        ("mon 24:00-23:00", "'24:00-23:00' in 'mon 24:00-23:00' starts at 24:00; "
                            "a range can only end there"),
        ("mon-fri", "'mon-fri' in 'mon-fri' has no hours; write e.g. 'mon-fri 09:00-17:00', "
                    "'mon-thu 08:00-17:00; fri 08:00-15:00' or '24/7'"),
        ("09:00-17:00", "hours '09:00-17:00' in '09:00-17:00' name no days; write e.g. "
                        "'mon-fri 09:00-17:00', 'mon-thu 08:00-17:00; fri 08:00-15:00' "
                        "or '24/7'"),
        ("mon-fri 09:00-17:00; fri 16:00-18:00", "fri is given overlapping hours 09:00-17:00 "
                                                 "and 16:00-18:00 in "
                                                 "'mon-fri 09:00-17:00; fri 16:00-18:00'"),
        ("mon,,fri 09:00-17:00", "empty day in 'mon,,fri' in 'mon,,fri 09:00-17:00'; write "
                                 "e.g. 'mon-fri 09:00-17:00', "
                                 "'mon-thu 08:00-17:00; fri 08:00-15:00' or '24/7'"),
        ("mon-fri 24/7", "'24/7' in 'mon-fri 24/7' is not a time range; write HH:MM-HH:MM, "
                         "e.g. 09:00-17:00"),
    ],
)
def test_hours_errors_are_sentences(text: str, message: str) -> None:
    with pytest.raises(ValueError) as raised:
        Calendar.parse(text)
    assert str(raised.value) == message


def test_hours_of_the_wrong_type_are_refused() -> None:
    with pytest.raises(ValueError, match="opening hours must be text, got 9"):
        Calendar.parse(9)  # type: ignore[arg-type]


# -- holidays -------------------------------------------------------------------------

SE_PUBLIC_2026 = [
    "2026-01-01",  # nyårsdagen
    "2026-01-06",  # trettondedag jul
    "2026-04-03",  # långfredagen
    "2026-04-05",  # påskdagen
    "2026-04-06",  # annandag påsk
    "2026-05-01",  # första maj
    "2026-05-14",  # Kristi himmelsfärds dag
    "2026-05-24",  # pingstdagen
    "2026-06-06",  # nationaldagen (a Saturday)
    "2026-06-20",  # midsommardagen (a Saturday)
    "2026-10-31",  # alla helgons dag: the Saturday between 31 October and 6 November
    "2026-12-25",  # juldagen
    "2026-12-26",  # annandag jul
]
SE_DE_FACTO_2026 = ["2026-06-19", "2026-12-24", "2026-12-31"]  # the three aftnar
SE_WORKING_DAYS_2026 = [
    "2026-04-02",  # skärtorsdagen
    "2026-04-04",  # påskafton: a Saturday, but no holiday
    "2026-04-07",
    "2026-05-13",  # the day before Ascension
    "2026-05-15",  # klämdag
    "2026-06-18",
    "2026-11-01",  # the Sunday after alla helgons dag
    "2026-12-23",
    "2026-12-28",
]


def open_at_noon(calendar: Calendar, day: str) -> bool:
    return calendar.is_open(at(f"{day}T12:00"))


@pytest.mark.parametrize("day", SE_PUBLIC_2026)
def test_swedish_public_holidays_are_closed(day: str) -> None:
    assert not open_at_noon(Calendar.parse(ALL_DAYS, "SE"), day)
    assert not open_at_noon(Calendar.parse(ALL_DAYS, "SE+de_facto"), day)
    assert open_at_noon(Calendar.parse(ALL_DAYS, ""), day)


@pytest.mark.parametrize("day", SE_DE_FACTO_2026)
def test_eves_are_closed_only_with_de_facto(day: str) -> None:
    assert open_at_noon(Calendar.parse(ALL_DAYS, "SE"), day)
    assert not open_at_noon(Calendar.parse(ALL_DAYS, "SE+de_facto"), day)


@pytest.mark.parametrize("day", SE_WORKING_DAYS_2026)
def test_ordinary_days_stay_open(day: str) -> None:
    assert open_at_noon(Calendar.parse(ALL_DAYS, "SE+de_facto"), day)


def test_holiday_text_forms() -> None:
    assert Calendar.parse(ALL_DAYS, " se + DE_FACTO ").closed.categories == ("public", "de_facto")
    assert Calendar.parse(ALL_DAYS, "SE").closed.categories == ("public",)
    assert Calendar.parse(ALL_DAYS, "").closed.country is None


def test_closed_reason_names_the_holiday_in_swedish() -> None:
    calendar = Calendar.parse(ALL_DAYS, "SE+de_facto", ["2026-07-13..2026-07-31"])
    assert calendar.closed_reason(dt.date(2026, 12, 24)) == "Julafton"
    assert calendar.closed_reason(dt.date(2026, 4, 3)) == "Långfredagen"
    assert calendar.closed_reason(dt.date(2026, 7, 20)) == "closed 2026-07-13..2026-07-31"
    assert calendar.closed_reason(dt.date(2026, 8, 3)) is None


def test_holidays_of_other_years_are_known() -> None:
    calendar = Calendar.parse(ALL_DAYS, "SE")
    assert not open_at_noon(calendar, "2027-03-26")  # långfredagen 2027
    assert not open_at_noon(calendar, "2030-06-06")
    assert open_at_noon(calendar, "2027-03-25")


@pytest.mark.parametrize(
    ("holidays", "message"),
    [
        ("XX", "unknown holiday country 'XX' in 'XX'; use a country code the holidays "
               "package knows, e.g. SE"),
        ("SE+defacto", "unknown holiday category 'defacto' for SE in 'SE+defacto'; "
                       "SE has: bank, de_facto, optional, public"),
        ("+de_facto", "holidays '+de_facto' names no country; write e.g. 'SE' or "
                      "'SE+de_facto'"),
    ],
)
def test_holiday_errors_are_sentences(holidays: str, message: str) -> None:
    with pytest.raises(ValueError) as raised:
        Calendar.parse(ALL_DAYS, holidays)
    assert str(raised.value) == message


# -- planned closures -----------------------------------------------------------------


def test_planned_closures_dates_and_ranges() -> None:
    calendar = Calendar.parse(ALL_DAYS, "", ["2026-07-13..2026-07-31", "2026-11-27"])
    assert open_at_noon(calendar, "2026-07-12")
    assert not open_at_noon(calendar, "2026-07-13")
    assert not open_at_noon(calendar, "2026-07-22")
    assert not open_at_noon(calendar, "2026-07-31")
    assert open_at_noon(calendar, "2026-08-01")
    assert open_at_noon(calendar, "2026-11-26")
    assert not open_at_noon(calendar, "2026-11-27")
    assert open_at_noon(calendar, "2026-11-28")
    # a closed day is closed from midnight to midnight
    assert calendar.next_opening(at("2026-07-13T00:00")) == at("2026-08-01T00:00")
    assert calendar.is_open(at("2026-07-12T23:59:59"))


def test_closures_join_and_accept_toml_dates() -> None:
    calendar = Calendar.parse(
        ALL_DAYS, "", ["2026-07-20..2026-07-31", "2026-07-13..2026-07-21", dt.date(2026, 8, 1)]
    )
    assert calendar.closed.ranges == ((dt.date(2026, 7, 13), dt.date(2026, 8, 1)),)


def test_closures_and_holidays_together() -> None:
    office = Calendar.parse("mon-fri 09:00-17:00", "SE", ["2026-12-28..2027-01-05"])
    # julafton is open with plain SE; after it everything is closed until 7 January
    # (the 6th is trettondedag jul)
    assert office.next_opening(at("2026-12-24T17:00")) == at("2027-01-07T09:00")


@pytest.mark.parametrize(
    ("closed", "message"),
    [
        (["2026-13-01"], "closed day '2026-13-01' is not a date; write YYYY-MM-DD or a range "
                         "YYYY-MM-DD..YYYY-MM-DD"),
        (["2026-07-31..2026-07-13"], "closed range '2026-07-31..2026-07-13' ends before it "
                                     "starts"),
        (["2026-07-13.."], "closed day '2026-07-13..' is not a date; write YYYY-MM-DD or a "
                           "range YYYY-MM-DD..YYYY-MM-DD"),
        ([20260713], "closed day 20260713 is not a date; write YYYY-MM-DD or a range "
                     "YYYY-MM-DD..YYYY-MM-DD"),
    ],
)
def test_closure_errors_are_sentences(closed: list[str], message: str) -> None:
    with pytest.raises(ValueError) as raised:
        Calendar.parse(ALL_DAYS, "", closed)
    assert str(raised.value) == message


def test_time_zone() -> None:
    assert Calendar.parse("24/7").tz.key == "Europe/Stockholm"
    helsinki = Calendar.parse("mon-fri 09:00-17:00", tz="Europe/Helsinki")
    # 09:00 in Helsinki is 08:00 in Stockholm
    assert helsinki.is_open(at("2026-11-24T08:00"))
    assert not helsinki.is_open(at("2026-11-24T16:00"))
    with pytest.raises(ValueError) as raised:
        Calendar.parse("24/7", tz="Europe/Stokholm")
    assert str(raised.value) == (
        "unknown time zone 'Europe/Stokholm'; use an IANA name such as Europe/Stockholm"
    )


# -- open or closed, half-open intervals --------------------------------------------------

OFFICE = Calendar.parse("mon-fri 09:00-17:00", "SE")


@pytest.mark.parametrize(
    ("moment", "is_open"),
    [
        ("2026-11-24T08:59:59.999999", False),
        ("2026-11-24T09:00", True),   # open at 09:00
        ("2026-11-24T12:00", True),
        ("2026-11-24T16:59:59.999999", True),
        ("2026-11-24T17:00", False),  # closed at 17:00
        ("2026-11-28T12:00", False),  # Saturday
        ("2026-11-24T08:00:00+00:00", True),  # 09:00 in Stockholm, given in UTC
        ("2026-11-24T16:00:00+00:00", False),  # 17:00 in Stockholm
    ],
)
def test_is_open_at_the_exact_minutes(moment: str, is_open: bool) -> None:
    assert OFFICE.is_open(at(moment)) is is_open


@pytest.mark.parametrize(
    ("moment", "opening"),
    [
        ("2026-11-24T08:59", "2026-11-24T09:00+01:00"),
        ("2026-11-24T17:00", "2026-11-25T09:00+01:00"),
        ("2026-11-27T17:00", "2026-11-30T09:00+01:00"),  # Friday evening: Monday
        ("2026-11-28T23:00", "2026-11-30T09:00+01:00"),
        ("2026-12-24T18:00", "2026-12-28T09:00+01:00"),  # juldagen, annandagen, weekend
        ("2026-04-02T17:00", "2026-04-07T09:00+02:00"),  # Easter
        ("2026-11-24T07:00:00+00:00", "2026-11-24T09:00+01:00"),
    ],
)
def test_next_opening(moment: str, opening: str) -> None:
    found = OFFICE.next_opening(at(moment))
    assert found.isoformat() == dt.datetime.fromisoformat(opening).isoformat()
    assert found.tzinfo == STOCKHOLM


def test_next_opening_of_an_open_moment_is_that_moment() -> None:
    moment = dt.datetime(2026, 11, 24, 10, 30, tzinfo=dt.UTC)
    assert OFFICE.next_opening(moment) is moment
    opening = at("2026-11-24T09:00")
    assert OFFICE.next_opening(opening) is opening


def test_naive_moments_are_refused() -> None:
    with pytest.raises(ValueError, match="has no UTC offset"):
        OFFICE.is_open(dt.datetime(2026, 11, 24, 10, 0))
    with pytest.raises(ValueError, match="has no UTC offset"):
        OFFICE.next_opening(dt.datetime(2026, 11, 24, 10, 0))
    assert OFFICE.localize(dt.datetime(2026, 11, 24, 10, 0)) == at("2026-11-24T10:00+01:00")


def test_hours_ending_at_midnight_meet_the_next_day() -> None:
    evenings = Calendar.parse("mon-fri 18:00-24:00; sat 00:00-02:00")
    assert evenings.is_open(at("2026-11-27T23:59"))
    assert evenings.is_open(at("2026-11-28T00:00"))  # Friday 24:00 is Saturday 00:00
    assert not evenings.is_open(at("2026-11-28T02:00"))
    assert evenings.next_opening(at("2026-11-28T02:00")) == at("2026-11-30T18:00")


def test_a_calendar_that_never_opens_again_says_so() -> None:
    closed = Calendar.parse("mon-fri 09:00-17:00", "", ["2026-01-01..2099-12-31"])
    with pytest.raises(ValueError, match="never opens"):
        closed.next_opening(at("2026-06-01T12:00"))
    assert open_time_between(at("2026-06-01T00:00"), at("2046-06-01T00:00"), closed) == (
        dt.timedelta()
    )


# -- daylight saving time -----------------------------------------------------------------


def test_office_hours_are_local_on_both_dst_days() -> None:
    every_day = Calendar.parse("mon-sun 09:00-17:00")
    assert every_day.next_opening(at("2026-03-29T01:00")).isoformat() == (
        "2026-03-29T09:00:00+02:00"
    )
    assert every_day.next_opening(at("2026-10-25T01:00")).isoformat() == (
        "2026-10-25T09:00:00+01:00"
    )
    assert every_day.is_open(at("2026-03-29T07:00:00+00:00"))  # 09:00 summer time
    assert not every_day.is_open(at("2026-03-29T06:59:00+00:00"))
    assert every_day.is_open(at("2026-10-25T08:00:00+00:00"))  # 09:00 winter time
    assert not every_day.is_open(at("2026-10-25T07:59:00+00:00"))
    assert open_time_between(at("2026-03-29T00:00"), at("2026-03-30T00:00"), every_day) == (
        dt.timedelta(hours=8)
    )


def test_a_whole_day_is_23_or_25_hours_on_dst_days() -> None:
    always = Calendar.parse("24/7")
    assert open_time_between(at("2026-03-29T00:00"), at("2026-03-30T00:00"), always) == (
        dt.timedelta(hours=23)
    )
    assert open_time_between(at("2026-10-25T00:00"), at("2026-10-26T00:00"), always) == (
        dt.timedelta(hours=25)
    )
    all_days = Calendar.parse(ALL_DAYS)  # the same week written as ranges
    assert open_time_between(at("2026-10-25T00:00"), at("2026-10-26T00:00"), all_days) == (
        dt.timedelta(hours=25)
    )


def test_hours_inside_the_changed_hour() -> None:
    night = Calendar.parse("sun 01:00-04:00")
    # spring: 01:00 CET to 04:00 CEST is two real hours
    assert open_time_between(at("2026-03-29T00:00"), at("2026-03-30T00:00"), night) == (
        dt.timedelta(hours=2)
    )
    # autumn: 01:00 CEST to 04:00 CET is four real hours
    assert open_time_between(at("2026-10-25T00:00"), at("2026-10-26T00:00"), night) == (
        dt.timedelta(hours=4)
    )
    # 02:30 does not exist on 2026-03-29: an opening then is read with the offset before
    # the change, i.e. 03:30 summer time
    skipped = Calendar.parse("sun 02:30-05:00")
    assert skipped.next_opening(at("2026-03-29T00:00")).isoformat() == (
        "2026-03-29T03:30:00+02:00"
    )
    # 02:30 happens twice on 2026-10-25: the first one counts
    repeated = Calendar.parse("sun 02:30-05:00")
    assert repeated.next_opening(at("2026-10-25T00:00")).isoformat() == (
        "2026-10-25T02:30:00+02:00"
    )


# -- open time between two moments ------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "end", "hours"),
    [
        ("2026-11-24T10:00", "2026-11-24T12:30", 2.5),
        ("2026-11-24T07:00", "2026-11-24T20:00", 8),
        ("2026-11-27T16:00", "2026-11-30T10:00", 2),  # over a weekend
        ("2026-04-02T16:00", "2026-04-07T10:00", 2),  # over Easter
        ("2026-11-24T12:00", "2026-11-24T12:00", 0),
        ("2026-11-24T12:00", "2026-11-24T11:00", 0),  # end before start
        ("2026-11-23T09:00", "2026-11-30T09:00", 40),  # a whole week
    ],
)
def test_open_time_between(start: str, end: str, hours: float) -> None:
    assert open_time_between(at(start), at(end), OFFICE) == dt.timedelta(hours=hours)


def test_open_time_between_gives_80_percent_warnings() -> None:
    start, deadline = at("2026-11-27T16:00"), at("2026-11-30T10:00")  # 2 h target
    warn = at("2026-11-30T09:36")
    assert open_time_between(start, warn, OFFICE) / open_time_between(start, deadline, OFFICE) == (
        0.8
    )


def test_walks_day_by_day(monkeypatch: pytest.MonkeyPatch) -> None:
    """A 48 h target in office hours looks at a handful of days, never at each minute."""
    from maild.sla import due

    calls: list[dt.date] = []
    original = CalendarClass.open_periods_on

    def counting(self: Calendar, day: dt.date) -> list[tuple[dt.datetime, dt.datetime]]:
        calls.append(day)
        return original(self, day)

    monkeypatch.setattr(CalendarClass, "open_periods_on", counting)
    due(at("2026-04-02T16:00"), "48h", OFFICE)
    assert len(calls) < 30


# -- words ---------------------------------------------------------------------------


def test_describe() -> None:
    calendar = Calendar.parse(
        "mon-thu 08:00-17:00; fri 08:00-15:00", "SE+de_facto", ["2026-07-13..2026-07-31"]
    )
    assert calendar.describe("en") == (
        "mon-thu 08:00-17:00; fri 08:00-15:00, closed on holidays (SE+de_facto), "
        "2026-07-13..2026-07-31"
    )
    assert calendar.describe("sv") == (
        "mån-tor 08:00-17:00; fre 08:00-15:00, stängt på helgdagar (SE+de_facto), "
        "2026-07-13..2026-07-31"
    )
    assert Calendar.parse("24/7").describe("sv") == "dygnet runt, alla dagar"
    assert Calendar.parse("mon-fri 09:00-17:00", tz="Europe/Helsinki").describe("en") == (
        "mon-fri 09:00-17:00 (Europe/Helsinki)"
    )
