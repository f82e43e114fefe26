"""Processing's plain rows: a TicketRow is the whole ticket, and writes back only what changed;
a batch brings the bytes of small mails along and reads a large mail's on its own."""

from __future__ import annotations

from email.message import EmailMessage
from email.policy import SMTP

from sqlalchemy import event, text, update
from sqlmodel import Session, col, select

from maild.intake import store_inbound
from maild.models import Outbox, Ticket, table_of
from maild.processing import BATCH_RAW_LIMIT
from maild.runtime import Runtime
from maild.tickets.ticket_row import COLUMNS, load_ticket, save_ticket
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
