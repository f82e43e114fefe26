"""`occurrence_in` passes over a sentence that cannot date anything without reading it all.

A sentence with no digit, and no past point, "today" or weekday, cannot place the
problem in time; the answer must be the same as reading every expression, which
the reference below (the function without the shortcut) does.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from maild.checks import occurrence
from maild.checks.occurrence import occurrence_in

SENT = datetime(2026, 11, 16, 10, 12, tzinfo=timezone(timedelta(hours=1)))
WORDS = ["igår", "i morse", "i måndags", "idag", "i dag", "today", "this afternoon",
         "on Monday", "Monday morning", "yesterday", "last night", "sedan", "since",
         "hände", "uppstod", "started", "failed", "först", "imorgon", "will", "nästa",
         "kl", "kl.", "ca", "09.45", "10:05", "14", "3 pm", "at 14", "16/11", "16.11",
         "2026-11-16", "12 november", "november 12", "den", "the", "felet", "sidan",
         "bokningen", "fungerar", "inte", "Chrome 131", "24/7", ",", ".", "(", ")"]


def reference(sentence: str, sent: datetime | None) -> str | None:
    """`occurrence_in` as it reads every expression of the sentence."""
    o = occurrence
    past = o._PAST_POINT.search(sentence)
    all_clocks = list(o._CLOCK.finditer(sentence))
    dates = o._past_dates(sentence, sent)
    pieces: list[re.Match[str]] = [*all_clocks, *dates, *o._AT_HOUR.finditer(sentence)]
    if past is not None:
        return o._evidence(sentence, [past, *pieces])
    if o._FUTURE.search(sentence):
        return None
    clocks = all_clocks if dates else [
        clock for clock in all_clocks if not o._later_than_sent(clock.group(0), sent)]
    event = o._EVENT.search(sentence) is not None
    since = o._SINCE.search(sentence) is not None
    today = o._TODAY.search(sentence)
    weekday = o._ON_WEEKDAY.search(sentence)
    if today is not None and (clocks or event):
        return o._evidence(sentence, [today, *pieces])
    if (clocks and (since or event or dates)) or (dates and (since or event)):
        return o._evidence(sentence, pieces)
    if weekday is not None and event:
        return o._evidence(sentence, [weekday, *pieces])
    return None


@settings(max_examples=3000)
@given(st.lists(st.sampled_from(WORDS), min_size=1, max_size=9).map(" ".join),
       st.sampled_from([SENT, None]))
def test_the_shortcut_answers_as_reading_every_expression_does(
        sentence: str, sent: datetime | None) -> None:
    assert occurrence_in(sentence, sent) == reference(sentence, sent)


def test_a_sentence_that_dates_nothing_is_passed_over() -> None:
    assert occurrence_in("Bokningssidan visar fel pris i kassan.", SENT) is None
    assert occurrence_in("Felet uppstod idag.", SENT) == "idag"
    assert occurrence_in("It failed on Monday.", SENT) == "on Monday"


DATE_WORDS = ["den", "the", "on", "since", "sedan", "från", "of", "kl", "kl.", "at", "3", "12",
              "17th", "2:a", "16/11", "16/11/26", "16.11", "16.11.2026", "2026-11-16",
              "2026-13-01", "NOVEMBER", "november", "Nov.", "ſept.", "ſeptember", "sept",
              "maj", "May", "may", "Dec", "oKt", "31", "29", "februari", "feb", "januari", "Jan",
              "MARS", "march", "april", "June", "juni", "juli", "Jul.", "augusti", "Aug",
              "October", "oktober", "DECEMBER", ",", ".", "-", "/", "felet", "hände",
              "Chrome 131"]


def every_date(sentence: str, sent: datetime | None) -> list[tuple[int, int]]:
    """The spans of the past dates in `sentence`, every date pattern searched."""
    o = occurrence
    return [match.span() for _, pattern in o._DATES for match in pattern.finditer(sentence)
            if (when := o._date_of(match, sent)) is not None
            and (sent is None or when <= sent.date())]


@settings(max_examples=3000)
@given(st.lists(st.sampled_from(DATE_WORDS), min_size=1, max_size=9).map(" ".join),
       st.sampled_from([SENT, None]))
def test_a_date_pattern_is_left_out_only_where_it_cannot_match(
        sentence: str, sent: datetime | None) -> None:
    """A pattern is searched only where the sentence has a digit and what the pattern needs:
    its '-', '.' or '/', or a month's name in any case (a long s too, as the patterns read)."""
    assert [match.span() for match in occurrence._past_dates(sentence, sent)] == every_date(
        sentence, sent)
