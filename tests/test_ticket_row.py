"""Processing's plain rows: a TicketRow is the whole ticket, and writes back only what changed;
a batch brings the bytes of small mails along and reads a large mail's on its own; a new
ticket's decision is serialised once for the ticket and its message."""

from __future__ import annotations

import json
from email.message import EmailMessage
from email.policy import SMTP
from typing import Any

import pytest
from sqlalchemy import event, text, update
from sqlmodel import Session, col, select

from maild.intake import store_inbound
from maild.models import Inbound, Outbox, Ticket, table_of
from maild.parse import ParsedMail
from maild.pipeline import Decision
from maild.processing import BATCH_RAW_LIMIT
from maild.runtime import Runtime
from maild.tickets import service
from maild.tickets.service import StoredMessage
from maild.tickets.ticket_row import COLUMNS, TicketRow, load_ticket, save_ticket
from tests.mailmaker import support_mail
from tests.pipeline_helpers import filled, receive


def test_a_ticket_row_has_every_column_of_the_ticket_table() -> None:
    assert set(COLUMNS) == {column.name for column in table_of(Ticket).columns}


def test_a_saved_row_writes_what_it_changed_and_leaves_the_rest(runtime: Runtime) -> None:
    number = receive(runtime, support_mail()).ticket
    assert number is not None
    with Session(runtime.engine) as session:
        row = load_ticket(session, number)
        # Someone else assigns the ticket after the row was read, in the same transaction.
        session.connection().execute(update(table_of(Ticket)).where(
            table_of(Ticket).c.number == number).values(assignee="per"))
        row.status = "open"
        save_ticket(session, row)
        session.commit()
    with Session(runtime.engine) as session:
        ticket = session.exec(select(Ticket).where(col(Ticket.number) == number)).one()
        assert (ticket.status, ticket.assignee) == ("open", "per")


def _with_attachment(size: int, subject: str) -> bytes:
    message = EmailMessage(policy=SMTP)
    message["From"] = "Anna Lind <anna.lind@bergstromsbygg.se>"
    message["To"] = "support@example.se"
    message["Subject"] = subject
    message["Message-ID"] = f"<{subject.replace(' ', '-')}@bergstromsbygg.se>"
    message.set_content("Hej!\n\nBokningssidan visar fel pris sedan i morse.\n")
    message.add_attachment(b"\x89PNG" * (size // 4), maintype="image", subtype="png",
                           filename="skarmbild.png")
    return message.as_bytes()


def test_a_batch_reads_a_large_mails_bytes_on_their_own(runtime: Runtime) -> None:
    large = _with_attachment(BATCH_RAW_LIMIT, "stor bild")
    small = _with_attachment(10_000, "liten bild")
    assert len(large) > BATCH_RAW_LIMIT > len(small)
    for raw in (small, large):
        store_inbound(runtime.engine, raw, transport="smtp")
    read_alone: list[str] = []

    @event.listens_for(runtime.engine, "before_cursor_execute")
    def _seen(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        if " ".join(statement.split()).startswith("SELECT coalesce(inbound_raw.raw, inbound.raw)"):
            read_alone.append(statement)

    counts = runtime.processor().run_pending()
    assert counts["processed"] == 2
    assert len(read_alone) == 1, "only the large mail is read on its own"
    with Session(runtime.engine) as session:
        copies = [item.raw for item in filled(session, session.exec(
            select(Outbox).where(col(Outbox.purpose) == "team").order_by(col(Outbox.id))))]
        assert session.connection().execute(text("SELECT count(*) FROM ticket")).scalar() == 2
    assert [small.replace(b"\r\n", b"\n") in copy.replace(b"\r\n", b"\n") for copy in copies] \
        == [True, False]
    assert large.replace(b"\r\n", b"\n") in copies[1].replace(b"\r\n", b"\n")


def _decision_records(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, object]]:
    """The decision records serialised from here on (`json.dumps` of one, counted)."""
    dumped: list[dict[str, object]] = []
    dumps = json.dumps

    def counted(value: object, *args: object, **kwargs: object) -> str:
        if isinstance(value, dict) and "rules_version" in value and "kind" in value:
            dumped.append(value)
        return dumps(value, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(json, "dumps", counted)
    return dumped


def _stored_decisions(runtime: Runtime, number: str) -> tuple[object, object]:
    """The decision of ticket `number` and of the message that opened it, as stored."""
    with Session(runtime.engine) as session:
        ticket = session.exec(select(Ticket).where(col(Ticket.number) == number)).one()
        opened = session.exec(select(Inbound).where(col(Inbound.ticket_id) == ticket.id)).one()
        return ticket.decision, opened.decision


def test_a_new_tickets_decision_is_serialised_once_for_the_ticket_and_its_message(
        runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    dumped = _decision_records(monkeypatch)
    number = receive(runtime, support_mail()).ticket
    assert number is not None
    assert len(dumped) == 1, "the ticket's text is written to the message as it is"
    on_ticket, on_message = _stored_decisions(runtime, number)
    assert on_ticket == on_message == dumped[0]
    assert isinstance(on_ticket, dict) and on_ticket["ticket"] == number


def test_a_decision_changed_after_its_ticket_was_written_is_serialised_again_for_the_message(
        runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    deliver = service._deliver_to_team

    def changing(session: Session, ticket: TicketRow, inbound: StoredMessage, mail: ParsedMail,
                 decision: Decision, **kwargs: Any) -> None:
        decision.details["changed_after_the_ticket"] = True
        deliver(session, ticket, inbound, mail, decision, **kwargs)

    monkeypatch.setattr(service, "_deliver_to_team", changing)
    dumped = _decision_records(monkeypatch)
    number = receive(runtime, support_mail()).ticket
    assert number is not None
    assert len(dumped) == 2
    on_ticket, on_message = _stored_decisions(runtime, number)
    assert isinstance(on_ticket, dict) and isinstance(on_message, dict)
    assert "changed_after_the_ticket" not in on_ticket
    assert on_message["changed_after_the_ticket"] is True


def test_a_new_ticket_is_written_once(sqlite_runtime: Runtime) -> None:
    """Inserted whole, with nothing changed after: no UPDATE of the ticket follows (the row
    it compares with is the one inserted, its decision a record, not the text written)."""
    statements: list[str] = []

    def trace(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.set_trace_callback(statements.append)

    event.listen(sqlite_runtime.engine, "connect", trace)
    sqlite_runtime.engine.dispose()
    assert receive(sqlite_runtime, support_mail()).ticket is not None
    assert sum(statement.startswith("INSERT INTO ticket ") for statement in statements) == 1
    assert [statement for statement in statements if statement.startswith("UPDATE ticket ")] \
        == []
