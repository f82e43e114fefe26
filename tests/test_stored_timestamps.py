"""A UTC timestamp goes to SQLite as the text SQLAlchemy's own processors would write.

`UTCDateTime` writes it on SQLite with one function (`datetime.isoformat`) instead of
converting to UTC and then building SQLAlchemy's text from the fields; every test here
compares the two.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from maild.intake import store_inbound
from maild.models import Inbound, UTCDateTime, _sqlite_utc_text, _UTCText, table_of
from maild.runtime import Runtime
from tests.mailmaker import support_mail

SQLITE = sqlite.dialect()
ZONES = st.one_of(st.just(UTC), st.timedeltas(min_value=timedelta(hours=-23, minutes=-59),
                                              max_value=timedelta(hours=23, minutes=59))
                  .map(timezone))
MOMENTS = st.datetimes(min_value=datetime(2, 1, 1), max_value=datetime(9998, 12, 30),
                       timezones=ZONES)


def _as_sqlalchemy_writes_it(value: datetime | None) -> object:
    return sqlite.DATETIME().bind_processor(SQLITE)(  # type: ignore[misc]
        UTCDateTime().process_bind_param(value, SQLITE))


@settings(max_examples=3000)
@given(MOMENTS)
def test_a_moment_is_written_as_sqlalchemy_writes_it(moment: datetime) -> None:
    assert _sqlite_utc_text(moment) == _as_sqlalchemy_writes_it(moment)


@settings(max_examples=500)
@given(st.lists(MOMENTS, min_size=1, max_size=8), st.lists(st.integers(0, 7), max_size=40))
def test_moments_written_again_and_again_are_each_written_as_sqlalchemy_writes_them(
        moments: list[datetime], order: list[int]) -> None:
    """The writer remembers the moments it wrote last; each text is still its own moment's,
    also for equal moments in other zones and for more moments than it remembers."""
    write = _UTCText()
    for index in order:
        moment = moments[index % len(moments)]
        assert write(moment) == _as_sqlalchemy_writes_it(moment)
        assert write(moment.replace(tzinfo=None).replace(tzinfo=moment.tzinfo)) \
            == _as_sqlalchemy_writes_it(moment)


def test_a_naive_moment_is_refused_after_its_aware_twin_was_written() -> None:
    write = _UTCText()
    aware = datetime(2026, 11, 16, 9, 0, tzinfo=UTC)
    assert write(aware) == "2026-11-16 09:00:00.000000"
    with pytest.raises(ValueError, match="naive datetime"):
        write(aware.replace(tzinfo=None))


def test_no_moment_and_a_naive_moment_are_what_they_were() -> None:
    assert _sqlite_utc_text(None) is None is _as_sqlalchemy_writes_it(None)
    for write in (_sqlite_utc_text, _as_sqlalchemy_writes_it):
        with pytest.raises(ValueError, match="naive datetime"):
            write(datetime(2026, 11, 16, 9, 0))


def test_sqlite_writes_with_the_one_function_and_postgresql_as_before(
        sqlite_runtime: Runtime) -> None:
    column = table_of(Inbound).c.received_at.type
    assert column._cached_bind_processor(sqlite_runtime.engine.dialect) is _sqlite_utc_text
    assert UTCDateTime().bind_processor(postgresql.dialect()) is not _sqlite_utc_text


def test_a_moment_written_so_is_read_back_in_utc(runtime: Runtime) -> None:
    received = datetime(2026, 11, 16, 10, 12, 0, 0, tzinfo=timezone(timedelta(hours=1)))
    stored = store_inbound(runtime.engine, support_mail(), transport="smtp",
                           received_at=received)
    with Session(runtime.engine) as session:
        row = session.get(Inbound, stored.inbound_id)
        assert row is not None
        assert row.received_at == received and row.received_at.tzinfo == UTC
