"""The Received header's date: RFC 5322's form of the current second, remade when it changes."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime

import pytest

from maild.transports import stamp


def test_the_date_is_the_current_second_in_rfc5322_form(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [datetime(2026, 11, 30, 9, 34, 8, 999_000, tzinfo=UTC).timestamp()]
    monkeypatch.setattr(stamp.time, "time", lambda: now[0])
    assert stamp.date_now() == "Mon, 30 Nov 2026 09:34:08 +0000"
    assert parsedate_to_datetime(stamp.date_now()) == datetime(2026, 11, 30, 9, 34, 8, tzinfo=UTC)


def test_a_new_second_gives_a_new_date(monkeypatch: pytest.MonkeyPatch) -> None:
    moment = datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC).timestamp()
    now = [moment + 0.5]
    monkeypatch.setattr(stamp.time, "time", lambda: now[0])
    assert stamp.date_now() == format_datetime(datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC))
    now[0] = moment + 1.0
    assert stamp.date_now() == "Fri, 01 Jan 2027 00:00:00 +0000"
