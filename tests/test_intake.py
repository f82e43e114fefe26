"""Durable intake: raw bytes kept exactly, redelivery recognised, distinct mail kept apart."""

from __future__ import annotations

from sqlmodel import Session, col, select

from maild.intake import (
    Arrival,
    Stored,
    idempotency_key,
    raw_message_id,
    store_batch,
    store_inbound,
)
from maild.models import Inbound
from maild.runtime import Runtime
from maild.sqlite_pieces import LARGE_BYTES
from tests.mailmaker import support_mail
from tests.pipeline_helpers import stored_bytes

TRACE = (b"Return-Path: <anna.lind@bergstromsbygg.se>\r\n"
         b"Received: from mx1.bergstromsbygg.se by mail.example.se; Mon, 16 Nov 2026\r\n"
         b"Delivered-To: support@example.se\r\nX-Original-To: support@example.se\r\n")


def test_key_ignores_trace_headers_and_line_endings() -> None:
    raw = support_mail(message_id="<a1@mail.test>")
    redelivered = TRACE + raw.replace(b"\r\n", b"\n")
    assert idempotency_key(raw) == idempotency_key(redelivered)


def test_key_changes_with_content_and_message_id() -> None:
    first = support_mail(message_id="<a1@mail.test>", body="Hej, sidan är nere.\n")
    other_body = support_mail(message_id="<a1@mail.test>", body="Hej, sidan fungerar igen.\n")
    other_id = support_mail(message_id="<a2@mail.test>", body="Hej, sidan är nere.\n")
    assert len({idempotency_key(first), idempotency_key(other_body),
                idempotency_key(other_id)}) == 3


def test_raw_message_id_is_read_from_the_header_block() -> None:
    raw = support_mail(message_id="<abc.123@mail.test>")
    assert raw_message_id(raw) == "abc.123@mail.test"
    assert raw_message_id(b"Subject: none\r\n\r\nMessage-ID: <body@x>\r\n") is None


def test_stored_bytes_are_exactly_the_received_bytes(runtime: Runtime) -> None:
    raw = b"From: x@y.se\r\nSubject: \xff\xfe odd bytes\r\n\r\nbody \x00 with NUL\r\n"
    stored = store_inbound(runtime.engine, raw, transport="pipe", envelope_sender="x@y.se",
                           recipients=["support@example.se"])
    with Session(runtime.engine) as session:
        row = session.get(Inbound, stored.inbound_id)
        assert row is not None
        assert row.size == len(raw)
        assert row.envelope_recipients == ["support@example.se"]
        assert row.state == "received"
    assert stored_bytes(runtime, stored.inbound_id) == raw


def test_redelivery_is_recorded_once_and_recipients_merge(runtime: Runtime) -> None:
    raw = support_mail(message_id="<same@mail.test>")
    first = store_inbound(runtime.engine, raw, transport="smtp",
                          recipients=["support@example.se"])
    again = store_inbound(runtime.engine, TRACE + raw, transport="imap",
                          recipients=["teknik@example.se"])
    assert not first.duplicate
    assert again.duplicate
    assert again.inbound_id == first.inbound_id
    with Session(runtime.engine) as session:
        rows = session.exec(select(Inbound)).all()
        assert len(rows) == 1
        assert rows[0].duplicates == 1
        assert rows[0].envelope_recipients == ["support@example.se", "teknik@example.se"]


def test_two_messages_sharing_a_message_id_are_both_kept(runtime: Runtime) -> None:
    one = support_mail(message_id="<reused@client>", body="Första frågan.\n")
    two = support_mail(message_id="<reused@client>", body="En helt annan fråga.\n")
    a = store_inbound(runtime.engine, one, transport="smtp")
    b = store_inbound(runtime.engine, two, transport="smtp")
    assert a.inbound_id != b.inbound_id
    assert not b.duplicate


def test_message_without_message_id_is_deduplicated_by_content(runtime: Runtime) -> None:
    raw = b"From: x@kund.se\r\nTo: support@example.se\r\nSubject: utan id\r\n\r\nHej!\r\n"
    a = store_inbound(runtime.engine, raw, transport="pipe")
    b = store_inbound(runtime.engine, TRACE + raw, transport="pipe")
    c = store_inbound(runtime.engine, raw.replace(b"Hej!", b"Hej igen!"), transport="pipe")
    assert b.duplicate
    assert b.inbound_id == a.inbound_id
    assert not c.duplicate


def test_a_batch_stores_each_message_once_and_counts_every_copy(runtime: Runtime) -> None:
    """Intake's group commit: copies within one batch, and of mail stored before, are duplicates."""
    earlier = support_mail(message_id="<earlier@mail.test>", body="Skickat i går.\n")
    before = store_inbound(runtime.engine, earlier, transport="smtp",
                           recipients=["support@example.se"])
    twice = support_mail(message_id="<twice@mail.test>", body="Till två adresser.\n")
    single = support_mail(message_id="<single@mail.test>", body="En gång.\n")
    results = store_batch(runtime.engine, [
        Arrival(twice, "smtp", "anna@kund.se", ["support@example.se"]),
        Arrival(TRACE + earlier, "smtp", "anna@kund.se", ["Teknik@example.se "]),
        Arrival(single, "smtp", "anna@kund.se", ["support@example.se"]),
        Arrival(TRACE + twice, "lmtp", "anna@kund.se", ["teknik@example.se"]),
        Arrival(earlier, "smtp", "anna@kund.se", ["support@example.se"]),
    ])
    assert all(isinstance(result, Stored) for result in results)
    stored = [result for result in results if isinstance(result, Stored)]
    assert [result.duplicate for result in stored] == [False, True, False, True, True]
    assert stored[1].inbound_id == stored[4].inbound_id == before.inbound_id
    assert stored[0].inbound_id == stored[3].inbound_id != stored[2].inbound_id
    with Session(runtime.engine) as session:
        rows = {row.message_id: row for row in session.exec(select(Inbound)).all()}
    assert len(rows) == 3
    assert rows["earlier@mail.test"].duplicates == 2
    assert rows["earlier@mail.test"].envelope_recipients == ["support@example.se",
                                                             "teknik@example.se"]
    assert rows["twice@mail.test"].duplicates == 1
    assert rows["twice@mail.test"].envelope_recipients == ["support@example.se",
                                                           "teknik@example.se"]
    assert stored_bytes(runtime, rows["twice@mail.test"].id) == twice, (
        "the first copy's bytes are kept")
    assert rows["single@mail.test"].duplicates == 0


def test_a_batch_of_mail_stored_before_adds_no_row(runtime: Runtime) -> None:
    raw = support_mail(message_id="<again@mail.test>")
    first = store_inbound(runtime.engine, raw, transport="smtp")
    [again] = store_batch(runtime.engine, [Arrival(raw, "smtp")])
    assert again == Stored(inbound_id=first.inbound_id, duplicate=True)
    with Session(runtime.engine) as session:
        assert len(session.exec(select(Inbound)).all()) == 1


def test_a_batch_of_new_mail_is_inserted_past_sqlalchemys_execute(
        runtime: Runtime, sqlalchemy_executions: list[str]) -> None:
    """The accept path's INSERTs run prepared, and store what SQLAlchemy's execution stores."""
    mails = [support_mail(message_id=f"<prepared-{index}@mail.test>", body=f"Fel {index}.\n")
             for index in range(3)]
    with runtime.engine.connect() as connection:
        results = store_batch(runtime.engine, [
            Arrival(raw, "smtp", "Anna@Kund.se", [" Support@example.se"], "smtp test")
            for raw in mails], connection=connection)
    assert "INSERT" not in sqlalchemy_executions, sqlalchemy_executions
    assert [result.duplicate for result in results if isinstance(result, Stored)] == [
        False, False, False]
    with Session(runtime.engine) as session:
        rows = session.exec(select(Inbound).order_by(col(Inbound.id))).all()
    assert [stored_bytes(runtime, row.id) for row in rows] == mails
    assert [row.id for row in rows] == [
        result.inbound_id for result in results if isinstance(result, Stored)]
    assert {(row.envelope_sender, tuple(row.envelope_recipients or ()), row.state,
             row.idempotency_key == idempotency_key(stored_bytes(runtime, row.id)))
            for row in rows} == {
        ("Anna@Kund.se", ("support@example.se",), "received", True)}


def test_a_batch_of_small_and_large_mail_new_and_stored_before_keeps_every_byte(
        runtime: Runtime) -> None:
    """A message stored before makes no row, and a large message's bytes (written a piece
    at a time on SQLite) are kept beside the small ones' in one batch."""
    small = [support_mail(message_id=f"<mixed-{index}@mail.test>", body=f"Fel {index}.\n")
             for index in range(3)]
    large = support_mail(message_id="<mixed-large@mail.test>",
                         body="Loggen:\n" + "rad i loggen\n" * 30_000)
    assert len(large) >= LARGE_BYTES
    before = store_inbound(runtime.engine, small[1], transport="smtp")
    results = store_batch(runtime.engine, [Arrival(small[0], "smtp"), Arrival(large, "smtp"),
                                           Arrival(small[1], "smtp"), Arrival(small[2], "lmtp")])
    stored = [result for result in results if isinstance(result, Stored)]
    assert [result.duplicate for result in stored] == [False, False, True, False]
    assert stored[2].inbound_id == before.inbound_id
    new_ids = [stored[0].inbound_id, stored[1].inbound_id, stored[3].inbound_id]
    assert new_ids == sorted(new_ids), "rows are made in the order the mail arrived"
    for result, raw in zip(stored, [small[0], large, small[1], small[2]], strict=True):
        assert stored_bytes(runtime, result.inbound_id) == raw
    with Session(runtime.engine) as session:
        assert len(session.exec(select(Inbound)).all()) == 4
