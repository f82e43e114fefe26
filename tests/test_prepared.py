"""Prepared statements write and read exactly what SQLAlchemy's own execution does, on SQLite
and PostgreSQL, in the caller's transaction, and fail as SQLAlchemy fails."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, bindparam, event, func, select, tuple_
from sqlalchemy.exc import IntegrityError, NoResultFound, StatementError
from sqlmodel import Session

from maild import prepared
from maild.db import open_database
from maild.intake import store_inbound
from maild.models import (
    Inbound,
    Outbox,
    Suppression,
    Ticket,
    TicketEvent,
    TicketMessage,
    table_of,
)
from maild.prepared import Prepared, _bound, connection_of, execute_sql, pipelined
from maild.runtime import Runtime
from tests.mailmaker import support_mail
from tests.pipeline_helpers import tickets

_TICKET = table_of(Ticket)
_OUTBOX = table_of(Outbox)
_INBOUND = table_of(Inbound)
_EVENT = table_of(TicketEvent)
_MESSAGE = table_of(TicketMessage)
# A time zone east of UTC: a UTC column stores it converted.
_CET = timezone(timedelta(hours=1))
_AT = datetime(2026, 11, 16, 10, 15, 30, 250_000, tzinfo=_CET)


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = open_database(database_url)
    yield engine
    engine.dispose()


def _stored(connection: Connection, table: str, key: int) -> tuple[Any, ...]:
    """A row as the driver reads it, without SQLAlchemy's conversions, its id left out."""
    cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    placeholder = "?" if connection.dialect.name == "sqlite" else "%s"
    cursor.execute(f"SELECT * FROM {table} WHERE id = {placeholder}", (key,))
    names = [column[0] for column in cursor.description]
    row = cursor.fetchone()
    cursor.close()
    return tuple(value for name, value in zip(names, row, strict=True) if name != "id")


def _ticket(number: str) -> dict[str, Any]:
    return {"number": number, "subject": "Fel pris – ÅÄÖ", "created_at": _AT,
            "updated_at": _AT.astimezone(UTC), "requester": "anna@kund.se", "private": True,
            "response_due": _AT + timedelta(hours=4), "missing": None,
            "participants": ["anna@kund.se", "bo@kund.se"],
            "decision": {"kind": "new", "nested": {"ä": [1, 2.5, None, True]}}}


def _inbound(key: str) -> dict[str, Any]:
    return {"received_at": _AT, "transport": "smtp", "envelope_recipients": ["s@example.se"],
            "raw": b"Subject: x\r\n\r\n\xff\x00body", "size": 17, "idempotency_key": key}


def test_an_insert_writes_the_bytes_sqlalchemy_writes(engine: Engine) -> None:
    with Session(engine) as session:
        connection = session.connection()
        for table, first, second in (
                (_TICKET, _ticket("MD-1"), _ticket("MD-2")),
                (_INBOUND, _inbound("a"), _inbound("b"))):
            ours = Prepared(table.insert()).run(session, first).inserted_key
            theirs = connection.execute(table.insert(), second).inserted_primary_key[0]
            assert ours is not None and ours != theirs
            mine, reference = _stored(connection, table.name, ours), _stored(
                connection, table.name, theirs)
            assert [a for a in mine if a not in ("MD-1", "a")] == [
                b for b in reference if b not in ("MD-2", "b")]
        ticket_id = connection.execute(select(_TICKET.c.id).limit(1)).scalar_one()
        event_values = {"ticket_id": ticket_id, "at": _AT, "actor": "maild", "kind": "created",
                        "detail": {"queue": None, "acknowledged": False}}
        outbox_values = {"ticket_id": ticket_id, "purpose": "team", "envelope_sender": "",
                         "recipient": "team@example.se", "message_id": "<m@x>",
                         "raw": b"\x00\xff", "created_at": _AT}  # state, attempts: defaults
        for table, values in ((_EVENT, event_values), (_OUTBOX, outbox_values)):
            ours = Prepared(table.insert()).run(session, values).inserted_key
            theirs = connection.execute(table.insert(), values).inserted_primary_key[0]
            assert _stored(connection, table.name, ours) == _stored(
                connection, table.name, theirs)
        session.commit()


def test_an_update_sets_what_sqlalchemy_sets_and_counts_its_rows(engine: Engine) -> None:
    by_number = _TICKET.update().where(_TICKET.c.number == bindparam("ticket_number"))
    changes = {"status": "closed", "closed_at": _AT, "missing": ["version"], "private": False,
               "decision": None}
    with Session(engine) as session:
        connection = session.connection()
        first = connection.execute(_TICKET.insert(), _ticket("MD-1")).inserted_primary_key[0]
        second = connection.execute(_TICKET.insert(), _ticket("MD-2")).inserted_primary_key[0]
        ran = Prepared(by_number).run(session, {"ticket_number": "MD-1", **changes})
        assert ran.rowcount == 1
        connection.execute(by_number, {"ticket_number": "MD-2", **changes})
        assert _stored(connection, "ticket", first)[1:] == _stored(
            connection, "ticket", second)[1:]
        assert Prepared(by_number).run(session, {"ticket_number": "none",
                                                 **changes}).rowcount == 0


def test_rows_come_back_converted_as_sqlalchemy_returns_them(engine: Engine) -> None:
    query = select(_TICKET).where(_TICKET.c.number == bindparam("wanted"))
    counted = select(func.count()).select_from(_TICKET).where(
        _TICKET.c.created_at >= bindparam("since"), _TICKET.c.private == True)  # noqa: E712
    with Session(engine) as session:
        connection = session.connection()
        connection.execute(_TICKET.insert(), _ticket("MD-1"))
        ours = Prepared(query).run(session, {"wanted": "MD-1"}).one()
        theirs = connection.execute(query, {"wanted": "MD-1"}).one()
        assert tuple(ours) == tuple(theirs) and ours._asdict() == theirs._asdict()
        assert ours.created_at == _AT and ours.created_at.tzinfo == UTC
        assert ours.participants == ["anna@kund.se", "bo@kund.se"]
        assert Prepared(counted).run(session, {"since": _AT - timedelta(seconds=1)}
                                     ).scalar_one() == 1
        assert Prepared(query).run(session, {"wanted": "none"}).first() is None
        with pytest.raises(NoResultFound):
            Prepared(query).run(session, {"wanted": "none"}).one()


def test_it_runs_in_the_callers_transaction_and_savepoints(engine: Engine) -> None:
    insert = Prepared(_TICKET.insert())
    with Session(engine) as session:
        insert.run(session, _ticket("MD-1"))
        execute_sql(session, "SAVEPOINT maild_test")
        insert.run(session, _ticket("MD-2"))
        execute_sql(session, "ROLLBACK TO SAVEPOINT maild_test")
        execute_sql(session, "RELEASE SAVEPOINT maild_test")
        session.rollback()
        insert.run(session, _ticket("MD-3"))
        session.commit()
    with engine.connect() as connection:
        assert connection.execute(select(_TICKET.c.number)).scalars().all() == ["MD-3"]


def test_a_driver_error_is_raised_as_sqlalchemy_raises_it(engine: Engine) -> None:
    insert = Prepared(_TICKET.insert())
    with Session(engine) as session:
        insert.run(session, _ticket("MD-1"))
        with pytest.raises(IntegrityError):
            insert.run(session, _ticket("MD-1"))


def _in_pipeline_mode(session: Session) -> bool:
    """Whether PostgreSQL's driver connection is in pipeline mode (libpq's PQpipelineStatus)."""
    driver: Any = session.connection().connection.driver_connection
    return hasattr(driver, "pgconn") and driver.pgconn.pipeline_status != 0


def test_statements_sent_in_a_pipeline_write_what_run_writes(engine: Engine) -> None:
    """In a `pipelined` block on PostgreSQL, statements are sent in the driver's pipeline
    mode; a `run` in the block sees everything sent before it; the rows are those `run`
    writes. On SQLite the block changes nothing."""
    insert, event = Prepared(_TICKET.insert()), Prepared(_EVENT.insert())
    count = Prepared(select(func.count()).select_from(_EVENT))
    with Session(engine) as session:
        ticket_id = insert.run(session, _ticket("MD-1")).inserted_key
        values = {"ticket_id": ticket_id, "at": _AT, "actor": "maild", "kind": "note",
                  "detail": {"ä": [1, None]}}
        event.run(session, values)
        with pipelined(session):
            assert _in_pipeline_mode(session) == (engine.dialect.name == "postgresql")
            for _ in range(5):
                event.send(session, values)
            assert count.run(session).scalar_one() == 6, "a run sees what was sent before"
            event.send(session, values)
        assert not _in_pipeline_mode(session)
        connection = session.connection()
        rows = connection.execute(select(_EVENT.c.id).order_by(_EVENT.c.id)).scalars().all()
        assert len(rows) == 7
        first = _stored(connection, "ticket_event", rows[0])
        assert all(_stored(connection, "ticket_event", key) == first for key in rows)
        session.commit()


def test_an_error_in_a_sent_statement_is_raised_at_the_end_of_its_block(
        engine: Engine) -> None:
    """A statement sent without waiting still fails as SQLAlchemy fails, by the end of its
    block at the latest; rolled back to a savepoint, the transaction goes on."""
    insert = Prepared(_TICKET.insert())
    with Session(engine) as session:
        insert.run(session, _ticket("MD-1"))
        execute_sql(session, "SAVEPOINT maild_test")

        def send_both() -> None:
            with pipelined(session):
                insert.send(session, _ticket("MD-2"))
                insert.send(session, _ticket("MD-1"))  # the number is taken

        with pytest.raises(IntegrityError):
            send_both()
        execute_sql(session, "ROLLBACK TO SAVEPOINT maild_test")

        def fail_after_sending() -> None:
            with pipelined(session):
                insert.send(session, _ticket("MD-1"))  # fails too, but the block's own
                raise ValueError("the caller's own failure")  # failure is what comes out

        execute_sql(session, "SAVEPOINT maild_test")
        # Where nothing is pipelined (SQLite) the statement fails as it is sent.
        with pytest.raises(ValueError if engine.dialect.name == "postgresql" else IntegrityError):
            fail_after_sending()
        execute_sql(session, "ROLLBACK TO SAVEPOINT maild_test")
        with pipelined(session):
            insert.send(session, _ticket("MD-3"))
        session.commit()
    with engine.connect() as connection:
        assert connection.execute(select(_TICKET.c.number).order_by(_TICKET.c.number)
                                  ).scalars().all() == ["MD-1", "MD-3"]


def test_sqlalchemys_own_execution_is_refused_in_a_pipeline(
        engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """A statement that goes through SQLAlchemy would read its result before it came: in a
    pipelined block it is refused (PostgreSQL), whether a prepared statement falls back to
    SQLAlchemy or the caller executes it; elsewhere it runs as always."""
    import maild.prepared as prepared_module

    def through_sqlalchemy_only(*args: Any) -> Any:
        raise AttributeError("compiler internals of another release")

    monkeypatch.setattr(prepared_module, "_direct_plan", through_sqlalchemy_only)
    insert = Prepared(_TICKET.insert())
    with Session(engine) as session:
        if engine.dialect.name == "postgresql":
            with pytest.raises(RuntimeError, match="pipelined block"), pipelined(session):
                insert.run(session, _ticket("MD-1"))
            session.rollback()
            # SQLAlchemy's own execution, the ORM's included, is refused too.
            with pytest.raises(RuntimeError, match="pipelined block"), pipelined(session):
                session.execute(select(_TICKET.c.number))
            session.rollback()
            with pytest.raises(RuntimeError, match="pipelined block"), pipelined(session):
                session.get(Ticket, 1)
            session.rollback()
        with pipelined(session), pipelined(session):  # in a block, or on SQLite: no change
            pass
        insert.run(session, _ticket("MD-1"))
        session.commit()


def test_a_session_connection_is_remembered_for_its_transaction_only(engine: Engine) -> None:
    with Session(engine) as session:
        first = connection_of(session)
        assert connection_of(session) is first is session.connection()
        session.commit()
        assert connection_of(session) is session.connection()


def test_an_engine_with_execution_events_sees_every_statement(engine: Engine) -> None:
    seen: list[str] = []
    event.listen(engine, "before_cursor_execute",
                 lambda *args: seen.append(args[2].split()[0]))
    statement = Prepared(_TICKET.insert())
    with Session(engine) as session:
        key = statement.run(session, _ticket("MD-1")).inserted_key
        execute_sql(session, "SAVEPOINT maild_test")
        session.commit()
    assert key is not None and seen == ["INSERT", "SAVEPOINT"]


def test_processing_runs_a_messages_statements_past_sqlalchemys_execute(
        runtime: Runtime, request: pytest.FixtureRequest) -> None:
    # Only a batch's own statements (the query of its claim, the year's counter row, the
    # next claim's query that finds nothing, PostgreSQL's accounting lock) go through
    # `Connection.execute`; before, a dozen went through it for every message.
    for index in range(4):
        store_inbound(runtime.engine, support_mail(subject=f"Fel pris {index}"),
                      transport="smtp", recipients=["support@example.se"])
    executed: list[str] = request.getfixturevalue("sqlalchemy_executions")
    counts = runtime.processor().run_pending()
    assert counts["processed"] == 4 and counts["kind:new"] == 4
    assert len(executed) <= 5 and "UPDATE" not in executed, executed
    assert len(tickets(runtime)) == 4


def test_a_value_its_type_refuses_is_raised_as_sqlalchemy_raises_it(engine: Engine) -> None:
    naive = {**_ticket("MD-1"), "created_at": datetime(2026, 11, 16, 9, 0)}
    with Session(engine) as session:
        with pytest.raises(StatementError, match="naive datetime"):
            Prepared(_TICKET.insert()).run(session, naive)
        with pytest.raises(StatementError, match="naive datetime"):
            session.connection().execute(_TICKET.insert(), naive)
        with pytest.raises(StatementError, match="required for bind parameter 'wanted'"):
            Prepared(select(_TICKET.c.id).where(_TICKET.c.number == bindparam("wanted"))
                     ).run(session, {"other": 1})


def test_an_in_list_is_expanded_as_sqlalchemy_expands_it(engine: Engine) -> None:
    query = select(_TICKET.c.number, _TICKET.c.created_at).where(
        _TICKET.c.number.in_(bindparam("numbers", expanding=True)),
        _TICKET.c.private == bindparam("private")).order_by(_TICKET.c.number)
    statement = Prepared(query)
    with Session(engine) as session:
        connection = session.connection()
        for number in ("MD-1", "MD-2", "MD-3"):
            connection.execute(_TICKET.insert(), _ticket(number))
        for numbers in (["MD-3", "MD-1", "none"], ["MD-2"], []):
            wanted = {"numbers": numbers, "private": True}
            assert [tuple(row) for row in statement.run(session, wanted).rows] == [
                tuple(row) for row in connection.execute(query, wanted)]
        assert [row.number for row in statement.run(
            session, {"numbers": ["MD-2", "MD-3"], "private": True}).rows] == ["MD-2", "MD-3"]


def test_in_lists_of_lengths_seen_before_are_expanded_as_sqlalchemy_expands_them(
        engine: Engine) -> None:
    """The expansion kept for a set of lengths gives each list's own elements, every time."""
    query = select(_TICKET.c.number).where(
        _TICKET.c.number.in_(bindparam("numbers", expanding=True)),
        _TICKET.c.queue.in_(bindparam("queues", expanding=True)),
        _TICKET.c.private == bindparam("private")).order_by(_TICKET.c.number)
    statement = Prepared(query)
    with Session(engine) as session:
        connection = session.connection()
        for index in range(1, 6):
            connection.execute(_TICKET.insert(), {**_ticket(f"MD-{index}"),
                                                  "queue": f"q{index % 2}"})
        asked = [(["MD-1", "MD-2", "MD-3"], ["q1"]), (["MD-4", "MD-5", "MD-2"], ["q0"]),
                 ([], ["q1"]), (["MD-3"], ["q0", "q1"]), (["MD-5"], ["q1", "q0"]),
                 (["MD-2", "MD-4", "MD-1"], ["q0"]), ([], []), (("MD-1", "MD-3"), ("q1",))]
        plan = statement.plan(connection.dialect, ("numbers", "private", "queues"))
        rendered_each_time = replace(plan, lists=None, expansions={})
        for numbers, queues in asked * 2:
            wanted = {"numbers": numbers, "queues": queues, "private": True}
            assert [row.number for row in statement.run(session, wanted).rows] == [
                row.number for row in connection.execute(query, wanted)], wanted
            # the same SQL and the same parameters in the same places, IN order included
            assert _bound(plan, wanted) == _bound(rendered_each_time, wanted), wanted
        assert plan.lists is not None
        assert {tuple(sorted(zip(plan.lists, lengths, strict=True)))
                for lengths in plan.expansions} == {
            (("numbers", numbers), ("queues", queues))
            for numbers, queues in ((3, 1), (0, 1), (1, 2), (0, 0), (2, 1))}


def test_an_in_list_given_as_a_generator_is_read_once_as_sqlalchemy_reads_it(
        engine: Engine) -> None:
    query = select(_TICKET.c.number).where(
        _TICKET.c.number.in_(bindparam("numbers", expanding=True))).order_by(_TICKET.c.number)
    statement = Prepared(query)
    with Session(engine) as session:
        connection = session.connection()
        for number in ("MD-8", "MD-9"):
            connection.execute(_TICKET.insert(), _ticket(number))
        for _ in range(2):
            assert [row.number for row in statement.run(
                session, {"numbers": (number for number in ("MD-9", "MD-8"))}).rows] == [
                "MD-8", "MD-9"]


def test_a_plan_keeps_expansions_for_a_bounded_number_of_lengths(
        engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(prepared, "EXPANSIONS_KEPT", 3)
    query = select(_TICKET.c.number).where(
        _TICKET.c.number.in_(bindparam("numbers", expanding=True))).order_by(_TICKET.c.number)
    statement = Prepared(query)
    with Session(engine) as session:
        connection = session.connection()
        connection.execute(_TICKET.insert(), _ticket("MD-6"))
        for length in range(1, 8):
            numbers = ["MD-6", *(f"none-{index}" for index in range(length - 1))]
            assert [row.number for row in statement.run(
                session, {"numbers": numbers}).rows] == ["MD-6"]
        plan = statement.plan(connection.dialect, ("numbers",))
        assert sorted(plan.expansions) == [(1,), (2,), (3,)]


def test_a_list_of_tuples_is_expanded_by_sqlalchemy_every_time(engine: Engine) -> None:
    query = select(_TICKET.c.number).where(
        tuple_(_TICKET.c.number, _TICKET.c.queue).in_(bindparam("pairs", expanding=True)))
    statement = Prepared(query)
    with Session(engine) as session:
        connection = session.connection()
        connection.execute(_TICKET.insert(), {**_ticket("MD-7"), "queue": "q7"})
        for pairs in ([("MD-7", "q7")], [("MD-7", "q1")], [("MD-7", "q7")]):
            assert [row.number for row in statement.run(session, {"pairs": pairs}).rows] == [
                row.number for row in connection.execute(query, {"pairs": pairs})]
        assert not statement.plan(connection.dialect, ("pairs",)).expansions


def test_a_connection_without_a_transaction_begins_one_as_sqlalchemy_does(
        engine: Engine) -> None:
    statement = Prepared(_TICKET.insert())
    with engine.connect() as connection:
        statement.run(connection, _ticket("MD-1"))
        assert connection.in_transaction()
        connection.commit()
        statement.run(connection, _ticket("MD-2"))
        statement.run(connection, _ticket("MD-3"))
        connection.rollback()
    with engine.connect() as connection:
        assert connection.execute(select(_TICKET.c.number)).scalars().all() == ["MD-1"]


def test_an_insert_gives_its_primary_key_as_sqlalchemy_gives_it(engine: Engine) -> None:
    suppression = table_of(Suppression)
    bounced = {"bounced_at": _AT, "reason": "5.1.1"}
    with Session(engine) as session:
        connection = session.connection()
        ran = Prepared(_TICKET.insert()).run(session, _ticket("MD-1"))
        theirs = connection.execute(_TICKET.insert(), _ticket("MD-2")).inserted_primary_key
        assert (ran.inserted_key, ran.rows) == (theirs[0] - 1, [])
        ran = Prepared(suppression.insert()).run(session, {"address": "a@kund.se", **bounced})
        theirs = connection.execute(suppression.insert(),
                                    {"address": "b@kund.se", **bounced}).inserted_primary_key
        assert (ran.inserted_key, theirs[0]) == ("a@kund.se", "b@kund.se")


def test_a_primary_key_given_to_an_insert_is_the_one_it_gives_back(engine: Engine) -> None:
    with Session(engine) as session:
        connection = session.connection()
        ran = Prepared(_TICKET.insert()).run(session, {**_ticket("MD-1"), "id": 500})
        theirs = connection.execute(_TICKET.insert(),
                                    {**_ticket("MD-2"), "id": 700}).inserted_primary_key
        after = Prepared(_TICKET.insert()).run(session, _ticket("MD-3")).inserted_key
        assert (ran.inserted_key, theirs[0]) == (500, 700)
        assert after == connection.execute(
            select(_TICKET.c.id).where(_TICKET.c.number == "MD-3")).scalar_one()


def test_a_new_rows_lastrowid_is_its_key_without_sqlalchemys_getter(
        tmp_path: Path) -> None:
    """Where the key is the table's one autoincrement column and no value is given for it,
    the cursor's lastrowid is the key, as SQLAlchemy's getter (refused here) would say."""
    engine = open_database(f"sqlite:///{tmp_path / 'maild.db'}")

    def refused(*_: object) -> None:
        raise AssertionError("SQLAlchemy's lastrowid getter was asked")

    try:
        with Session(engine) as session:
            insert = Prepared(_TICKET.insert())
            plan = insert.plan(engine.dialect, tuple(sorted(_ticket("MD-1"))))
            plan.compiled.__dict__["_inserted_primary_key_from_lastrowid_getter"] = refused
            keys = [insert.run(session, _ticket(f"MD-{n}")).inserted_key for n in (1, 2)]
            numbers = session.connection().execute(
                select(_TICKET.c.id, _TICKET.c.number).order_by(_TICKET.c.id)).all()
            assert [tuple(row) for row in numbers] == [(keys[0], "MD-1"), (keys[1], "MD-2")]
            with_id = insert.plan(engine.dialect, tuple(sorted({**_ticket("MD-3"), "id": 9})))
            assert (plan.key_is_lastrowid, with_id.key_is_lastrowid) == (True, False)
    finally:
        engine.dispose()


def test_without_the_compiler_internals_it_reads_a_statement_goes_through_sqlalchemy(
        engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    def missing(compiled: object) -> None:
        raise AttributeError("'SQLCompiler' object has no attribute '_bind_processors'")

    monkeypatch.setattr("maild.prepared._direct_plan", missing)
    with Session(engine) as session:
        key = Prepared(_TICKET.insert()).run(session, _ticket("MD-1")).inserted_key
        row = Prepared(select(_TICKET.c.id, _TICKET.c.participants).where(
            _TICKET.c.number == bindparam("wanted"))).run(session, {"wanted": "MD-1"}).one()
        assert (row.id, row.participants) == (key, ["anna@kund.se", "bo@kund.se"])


def test_a_statement_keeps_its_plans_for_each_database() -> None:
    from sqlalchemy.dialects import postgresql, sqlite

    statement = Prepared(select(_TICKET.c.id).where(_TICKET.c.number == bindparam("n")))
    lite, pg = sqlite.dialect(), postgresql.dialect()
    first = statement.plan(lite, ("n",))
    other = statement.plan(pg, ("n",))
    assert other is not first and "?" in first.sql and "%(n)s" in other.sql
    assert statement.plan(lite, ("n",)) is first and statement.plan(pg, ("n",)) is other
    assert statement.plan(pg, ("n",)) is other and statement.plan(lite, ("n",)) is first
