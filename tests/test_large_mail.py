"""A large mail (more than a batch reads at once) is processed as a small one is.

On SQLite it is parsed while read from its row a piece at a time, and its team copy
takes the original from its row a piece at a time as well; the copy must still carry
it byte for byte, and the ticket be what parsing the whole bytes gives.
"""

from __future__ import annotations

import os
from email import message_from_bytes
from email.policy import default

import pytest
from sqlmodel import Session, col, select

import maild.processing as processing_module
from maild.models import InboundRaw, Outbox, table_of, utcnow
from maild.parse import parse_mail
from maild.processing import BATCH_RAW_LIMIT
from maild.runtime import Runtime
from maild.sqlite_blobs import blob_pieces, insert_with_blob
from tests.mailmaker import authenticated_message
from tests.pipeline_helpers import filled, receive, tickets

PAYLOAD = os.urandom(600_000)


def _large_mail(payload: bytes = PAYLOAD) -> bytes:
    message = authenticated_message(
        subject="Loggfiler från driftstoppet", message_id="<loggar@bergstromsbygg.se>",
        text="Hej! Bokningssidan låg nere i morse, loggarna är bifogade.\n\nAnna\n")
    message.add_attachment(payload, maintype="application", subtype="octet-stream",
                           filename="loggar.bin")
    raw = message.as_bytes()
    assert len(raw) > BATCH_RAW_LIMIT
    return raw


def _team_copy(runtime: Runtime) -> bytes:
    with Session(runtime.engine) as session:
        [item] = filled(session, session.exec(
            select(Outbox).where(col(Outbox.purpose) == "team")).all())
        return item.raw


@pytest.mark.parametrize("line_ending", [b"\r\n", b"\n"], ids=["crlf", "lf"])
def test_a_large_mail_becomes_a_ticket_and_reaches_the_team_intact(
        runtime: Runtime, line_ending: bytes) -> None:
    raw = _large_mail().replace(b"\r\n", line_ending)
    outcome = receive(runtime, raw, sender="anna.lind@bergstromsbygg.se")
    assert (outcome.state, outcome.kind) == ("processed", "new")
    [ticket] = tickets(runtime)
    assert ticket.subject == parse_mail(raw).subject == "Loggfiler från driftstoppet"
    team = _team_copy(runtime)
    assert team.count(raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")) == 1
    assert team.endswith(b"--\r\n")  # written to its exact length: no zeros after the end
    summary, original = list(message_from_bytes(team, policy=default).iter_parts())
    assert ticket.number in summary.get_content()
    assert original.get_content_type() == "message/rfc822"
    embedded = message_from_bytes(raw, policy=default)
    assert next(embedded.iter_attachments()).get_content() == PAYLOAD


def test_on_sqlite_a_large_mail_is_parsed_without_reading_it_whole(
        sqlite_runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    def whole(raw: bytes) -> None:
        raise AssertionError(f"parsed from whole bytes ({len(raw)})")

    monkeypatch.setattr(processing_module, "parse_mail", whole)
    outcome = receive(sqlite_runtime, _large_mail(), sender="anna.lind@bergstromsbygg.se")
    assert (outcome.state, outcome.kind) == ("processed", "new")


def test_sqlite_blobs_are_read_and_written_exactly(sqlite_runtime: Runtime) -> None:
    raw = _large_mail(os.urandom(2_000_000))  # more than one piece written at a time
    outcome = receive(sqlite_runtime, raw)
    inbound, outbox = table_of(InboundRaw), table_of(Outbox)
    with sqlite_runtime.engine.begin() as connection:
        with blob_pieces(connection, inbound, "raw", outcome.inbound_id, 1000) as pieces:
            read = list(pieces)
        assert b"".join(read) == raw
        assert {len(piece) for piece in read[:-1]} == {1000}
        row_id = insert_with_blob(
            connection, outbox, "raw",
            [b"first\r\n", raw, b"last"],  # the middle part written a MB at a time
            {"purpose": "team", "envelope_sender": "", "recipient": "webb@example.se",
             "message_id": "copy@example.se", "state": "queued",
             "created_at": utcnow()})
        written = connection.execute(select(outbox.c.raw).where(outbox.c.id == row_id)).scalar()
    assert written == b"first\r\n" + raw + b"last"

