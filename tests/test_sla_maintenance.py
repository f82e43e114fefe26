"""Planned maintenance windows: closed from a time of day to a time of day, not whole days."""

from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path

import pytest

from maild.routing.load import RulesError, load_rules
from maild.sla import Calendar, due
from maild.sla.policy_clock import deadlines
from tests.conftest import RULES


def at(text: str) -> datetime:
    return datetime.fromisoformat(text + "+01:00")


def test_the_clock_stops_in_a_window() -> None:
    # ClearOn's technical support, open 06-23 every day, with a maintenance Saturday morning.
    calendar = Calendar.parse("mon-sun 06:00-23:00", "",
                              ["2026-12-12 08:00..2026-12-12 10:30"])
    assert due(at("2026-12-12T07:30"), "1h", calendar) == at("2026-12-12T11:00")
    assert due(at("2026-12-12T09:00"), "1h", calendar) == at("2026-12-12T11:30"), \
        "received in the window: starts when it ends"
    assert due(at("2026-12-12T11:00"), "1h", calendar) == at("2026-12-12T12:00")
    assert not calendar.is_open(at("2026-12-12T09:59"))
    assert calendar.is_open(at("2026-12-12T10:30"))


def test_a_window_across_midnight_and_whole_days_together() -> None:
    calendar = Calendar.parse("24/7", "", ["2026-12-12T22:00..2026-12-13T04:00", "2026-12-24"])
    assert due(at("2026-12-12T21:30"), "1h", calendar) == at("2026-12-13T04:30")
    assert due(at("2026-12-23T23:30"), "1h", calendar) == at("2026-12-25T00:30")


@pytest.mark.parametrize(("entry", "words"), [
    ("2026-12-12 22:00", "needs an end"),
    ("2026-12-12 22:00..2026-12-12 21:00", "ends before it starts"),
    ("2026-12-12 22:00..2026-12-13", "a date and a time at both ends"),
])
def test_a_bad_window_is_refused(entry: str, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        Calendar.parse("24/7", "", [entry])


def test_a_window_in_a_policy_moves_its_deadlines(tmp_path: Path) -> None:
    rules_dir = tmp_path / "rules"
    shutil.copytree(RULES, rules_dir)
    path = rules_dir / "policies" / "itil-p1-p4.toml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace('holidays = "SE"\n', 'holidays = "SE"\n'
                                 'closed = ["2026-12-14 12:00..2026-12-14 14:00"]\n', 1),
                    encoding="utf-8")
    policy = load_rules(rules_dir).policies["itil-p1-p4"]
    # P1: response within 1 h; the two maintenance hours do not count.
    assert deadlines(policy, "P1", at("2026-12-14T11:30")).response == at("2026-12-14T14:30")
    path.write_text(text.replace('holidays = "SE"\n', 'holidays = "SE"\n'
                                 'closed = ["2026-12-14 12:00..2026-12-14 11:00"]\n', 1),
                    encoding="utf-8")
    with pytest.raises(RulesError) as error:
        load_rules(rules_dir)
    assert any("ends before it starts" in str(problem) for problem in error.value.problems)
