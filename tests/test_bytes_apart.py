"""Where a mail's bytes are kept: apart from its changing row on SQLite, in it on PostgreSQL.

On SQLite, claiming and processing a message, and claiming and recording an outbox
item, must not write their bytes again; on PostgreSQL they stay in `raw`, which an
instance of the previous version reads during a rolling upgrade. A mail stored the
old way is still read.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from email import message_from_bytes
from email.policy import default
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from sqlalchemy import event, insert, select, text
from sqlmodel import Session, col

from maild.db import _alembic_config
from maild.intake import Arrival, store_batch, store_inbound
from maild.models import Inbound, InboundRaw, Outbox, OutboxRaw, table_of, utcnow
from maild.runtime import Runtime, open_runtime
from maild.transports.pipe import store_sqlite
from tests.conftest import MaildCLI, make_config
from tests.mailmaker import authenticated_message, support_mail
from tests.pipeline_helpers import filled, stored_bytes, tickets


def _mail_with_attachment(size: int, subject: str = "Loggar från driftstoppet") -> bytes:
    message = authenticated_message(
        subject=subject, message_id=f"<{subject.split(maxsplit=1)[0].lower()}@bergstromsbygg.se>",
        text="Hej! Bokningssidan låg nere i morse, loggarna är bifogade.\n\nAnna\n")
    message.add_attachment(os.urandom(size), maintype="application",
                           subtype="octet-stream", filename="loggar.bin")
    return message.as_bytes()


def _outbox_kept(runtime: Runtime) -> dict[str, list[tuple[bytes, bytes | None]]]:
    """Each outbox item's (own `raw`, bytes in `outbox_raw` or None), by purpose."""
    kept: dict[str, list[tuple[bytes, bytes | None]]] = {}
    with Session(runtime.engine) as session:
        for item in session.scalars(select(Outbox).order_by(col(Outbox.id))):
            apart = session.get(OutboxRaw, item.id)
            kept.setdefault(item.purpose, []).append(
                (item.raw, apart.raw if apart is not None else None))
    return kept


def _wal(runtime: Runtime) -> Path:
    database = runtime.engine.url.database
    assert database is not None
    return Path(f"{database}-wal")


def _where_kept(runtime: Runtime, inbound_id: int) -> tuple[bytes, bytes | None]:
    """(the row's own `raw`, the bytes in `inbound_raw` or None)."""
    with Session(runtime.engine) as session:
        row = session.get(Inbound, inbound_id)
        apart = session.get(InboundRaw, inbound_id)
        assert row is not None
        return row.raw, (apart.raw if apart is not None else None)


@pytest.fixture
def wal_runtime(tmp_path: Path) -> Iterator[Runtime]:
    """An SQLite runtime whose write-ahead log only grows: it is never checkpointed."""
    runtime = open_runtime(make_config(tmp_path))

    @event.listens_for(runtime.engine, "connect")
    def _no_checkpoints(dbapi: Any, _record: object) -> None:
        dbapi.execute("PRAGMA wal_autocheckpoint=0")

    runtime.engine.dispose()  # connections made from now on have the setting
    yield runtime
    runtime.engine.dispose()


def test_on_sqlite_claiming_and_processing_a_message_does_not_write_its_bytes_again(
        wal_runtime: Runtime) -> None:
    raw = _mail_with_attachment(2_000_000)
    stored = store_inbound(wal_runtime.engine, raw, transport="smtp",
                           envelope_sender="anna.lind@bergstromsbygg.se",
                           recipients=["support@example.se"])
    before = _wal(wal_runtime).stat().st_size
    counts = wal_runtime.processor().run_pending()
    assert counts["processed"] == 1
    written = _wal(wal_runtime).stat().st_size - before
    # The claim and the processed update wrote the bytes in the inbound row again, and the
    # team copy a copy of them (5 times the message in all); the copy refers to it now.
    assert written < 0.2 * len(raw), f"{written} bytes written to process {len(raw)}"
    assert _where_kept(wal_runtime, stored.inbound_id) == (b"", raw)
    [(own, before_original)] = _outbox_kept(wal_runtime)["team"]
    assert own == b"" and before_original is not None
    assert before_original.endswith(b'filename="original.eml"\r\n\r\n')
    with Session(wal_runtime.engine) as session:
        [item] = filled(session, session.scalars(select(Outbox).where(
            col(Outbox.purpose) == "team")).all())
        apart = session.get(OutboxRaw, item.id)
        assert apart is not None and apart.original_id == stored.inbound_id
    assert item.raw == before_original + raw + apart.tail


def test_on_sqlite_sending_an_outbox_item_does_not_write_its_bytes_again(
        wal_runtime: Runtime) -> None:
    raw = _mail_with_attachment(2_000_000)
    store_inbound(wal_runtime.engine, raw, transport="smtp",
                  envelope_sender="anna.lind@bergstromsbygg.se",
                  recipients=["support@example.se"])
    wal_runtime.processor().run_pending()
    with Session(wal_runtime.engine) as session:
        [item] = filled(session, session.scalars(select(Outbox).where(
            col(Outbox.purpose) == "team")).all())
    team = item.raw
    assert raw in team
    before = _wal(wal_runtime).stat().st_size
    report = wal_runtime.flush_outbox()
    assert report.sent_by_purpose.get("team") == 1, report
    written = _wal(wal_runtime).stat().st_size - before
    # The claim and the record of its sending each wrote the copy again, before.
    assert written < 0.2 * len(team), f"{written} bytes written to send {len(team)}"
    delivered = [path.read_bytes() for path in (wal_runtime.config.outbox_maildir / "new")
                 .iterdir()]
    assert team in delivered


def test_every_way_in_keeps_the_bytes_apart_on_sqlite(sqlite_runtime: Runtime) -> None:
    one, two, three = (support_mail(message_id=f"<{name}@bergstromsbygg.se>")
                       for name in ("ett", "tva", "tre"))
    first = store_inbound(sqlite_runtime.engine, one, transport="smtp")
    [second] = store_batch(sqlite_runtime.engine, [Arrival(two, "smtp")])
    database = sqlite_runtime.engine.url.database
    assert database is not None
    third = store_sqlite(Path(database), three, sender=None, recipients=[])
    assert third is not None and not isinstance(second, Exception)
    for inbound_id, raw in ((first.inbound_id, one), (second.inbound_id, two),
                            (third.inbound_id, three)):
        assert _where_kept(sqlite_runtime, inbound_id) == (b"", raw)
        assert stored_bytes(sqlite_runtime, inbound_id) == raw


def test_every_way_out_keeps_the_bytes_apart_on_sqlite(
        sqlite_runtime: Runtime, maild: MaildCLI) -> None:
    """Acknowledgements, team copies and staff replies (escalations are queued alike)."""
    env = {"MAILD_DATA_DIR": str(sqlite_runtime.config.data_dir)}
    stored = store_inbound(sqlite_runtime.engine, authenticated_message(
        subject="Bokningen är nere", message_id="<nere@bergstromsbygg.se>",
        text="Hej! Bokningssidan är helt nere sedan kl 09.00, akut!\n\nAnna\n").as_bytes(),
        transport="smtp", recipients=["support@example.se"])
    outcome = sqlite_runtime.processor().process_now(stored.inbound_id)
    assert outcome is not None and outcome.ticket is not None
    replied = maild("ticket", "reply", outcome.ticket, "Vi tittar på det nu.", extra_env=env)
    assert replied.code == 0, replied.stderr
    kept = _outbox_kept(sqlite_runtime)
    assert {"ack", "team", "reply"} <= set(kept), kept.keys()
    for purpose, items in kept.items():
        for own, apart in items:
            assert own == b"" and apart, f"{purpose}: the bytes are not kept apart"
    shown = maild("outbox", "show", "--raw", "1", extra_env=env)
    assert shown.code == 0 and shown.raw_stdout == kept["ack"][0][1], shown.stderr


def test_on_postgresql_the_bytes_stay_in_the_row_an_older_instance_reads(
        postgres_url: str, tmp_path: Path) -> None:
    runtime = open_runtime(make_config(tmp_path, postgres_url))
    try:
        one, two = (support_mail(message_id=f"<{name}@bergstromsbygg.se>")
                    for name in ("ett", "tva"))
        first = store_inbound(runtime.engine, one, transport="smtp")
        [second] = store_batch(runtime.engine, [Arrival(two, "smtp")])
        assert not isinstance(second, Exception)
        assert _where_kept(runtime, first.inbound_id) == (one, None)
        assert _where_kept(runtime, second.inbound_id) == (two, None)
        assert runtime.processor().run_pending()["processed"] == 2
        kept = _outbox_kept(runtime)
        assert kept and all(own and apart is None for items in kept.values()
                            for own, apart in items)
    finally:
        runtime.engine.dispose()


@pytest.mark.parametrize("size", [2_000, 600_000], ids=["small", "large"])
def test_a_message_stored_with_its_bytes_in_its_row_is_still_processed_and_shown(
        sqlite_runtime: Runtime, maild: MaildCLI, size: int) -> None:
    """As every message was stored before `inbound_raw`, and still is on PostgreSQL."""
    raw = _mail_with_attachment(size)
    with sqlite_runtime.engine.begin() as connection:
        inbound_id = connection.execute(insert(table_of(Inbound)).values(
            received_at=utcnow(), transport="smtp", envelope_recipients=["support@example.se"],
            raw=raw, size=len(raw), idempotency_key=f"earlier-{size}", state="received",
            attempts=0, duplicates=0)).inserted_primary_key[0]
    counts = sqlite_runtime.processor().run_pending()
    assert counts["processed"] == 1, counts
    [ticket] = tickets(sqlite_runtime)
    assert ticket.subject == "Loggar från driftstoppet"
    with Session(sqlite_runtime.engine) as session:
        [item] = filled(session, session.scalars(
            select(Outbox).where(col(Outbox.purpose) == "team")).all())
        team = item.raw
    [_, original] = message_from_bytes(team, policy=default).iter_parts()
    assert original.get_content_type() == "message/rfc822"
    assert raw in team.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    shown = maild("inbound", "raw", str(inbound_id),
                  extra_env={"MAILD_DATA_DIR": str(sqlite_runtime.config.data_dir)})
    assert shown.code == 0, shown.stderr
    assert shown.raw_stdout == raw


def test_an_outbox_item_queued_with_its_bytes_in_its_row_is_still_sent(
        sqlite_runtime: Runtime) -> None:
    """As every item was queued before `outbox_raw`, and still is on PostgreSQL."""
    raw = (b"From: support@example.se\r\nTo: anna.lind@bergstromsbygg.se\r\n"
           b"Subject: [MD-1] Tidigare\r\nMessage-ID: <tidigare@example.se>\r\n\r\nHej!\r\n")
    with sqlite_runtime.engine.begin() as connection:
        connection.execute(insert(table_of(Outbox)).values(
            purpose="ack", envelope_sender="", recipient="anna.lind@bergstromsbygg.se",
            message_id="tidigare@example.se", raw=raw, state="queued", created_at=utcnow(),
            history=[]))
    report = sqlite_runtime.flush_outbox()
    assert report.sent == 1, report
    [path] = (sqlite_runtime.config.outbox_maildir / "new").iterdir()
    assert path.read_bytes() == raw


def test_a_team_copy_that_refers_to_an_8bit_original_is_sent_byte_for_byte(
        sqlite_runtime: Runtime) -> None:
    """Bytes that are no UTF-8 at all (Latin-1 text, as old mailers send it) come back
    exactly from the copy's three pieces, in the database and in the delivered file."""
    raw = (b"Authentication-Results: mx1.example.se; dkim=pass header.d=bergstromsbygg.se;"
           b" spf=pass smtp.mailfrom=anna.lind@bergstromsbygg.se; dmarc=pass"
           b" header.from=bergstromsbygg.se\r\n"
           b"From: Anna Lind <anna.lind@bergstromsbygg.se>\r\nTo: support@example.se\r\n"
           b"Subject: Fel i kassan\r\nMessage-ID: <latin1@bergstromsbygg.se>\r\n"
           b"Content-Type: text/plain; charset=iso-8859-1\r\n"
           b"Content-Transfer-Encoding: 8bit\r\n\r\n"
           b"Hej! Kassan visar fel pris p\xe5 s\xf6ndagar sedan i morse.\r\n\r\nAnna\r\n")
    stored = store_inbound(sqlite_runtime.engine, raw, transport="smtp",
                           recipients=["support@example.se"])
    assert sqlite_runtime.processor().run_pending()["processed"] == 1
    with Session(sqlite_runtime.engine) as session:
        [item] = filled(session, session.scalars(select(Outbox).where(
            col(Outbox.purpose) == "team")).all())
        apart = session.get(OutboxRaw, item.id)
    assert apart is not None and apart.original_id == stored.inbound_id
    assert item.raw.count(raw) == 1
    assert item.raw.endswith(b"--\r\n"), "the multipart is closed after the original"
    [_, original] = message_from_bytes(item.raw, policy=default).iter_parts()
    assert original.get_content_type() == "message/rfc822"
    sqlite_runtime.flush_outbox()
    delivered = [path.read_bytes() for path in
                 (sqlite_runtime.config.outbox_maildir / "new").iterdir()]
    assert item.raw in delivered


def test_downgrading_the_schema_puts_every_byte_back_into_its_row(
        sqlite_runtime: Runtime) -> None:
    raw = _mail_with_attachment(50_000)
    stored = store_inbound(sqlite_runtime.engine, raw, transport="smtp",
                           recipients=["support@example.se"])
    assert sqlite_runtime.processor().run_pending()["processed"] == 1
    with Session(sqlite_runtime.engine) as session:
        items = {item.id: item.raw for item in filled(session, session.scalars(select(Outbox)))}
        assert session.scalars(select(OutboxRaw.original_id)).all().count(
            stored.inbound_id) == 1, "the team copy refers to its original"
    config = _alembic_config()
    with sqlite_runtime.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0011_outbox_dot")
        assert connection.execute(text("SELECT raw FROM inbound")).scalar_one() == raw
        assert dict(connection.execute(text("SELECT id, raw FROM outbox")).all()) == items
        assert connection.execute(text(
            "SELECT count(*) FROM sqlite_master WHERE name LIKE '%\\_raw' ESCAPE '\\'")
        ).scalar_one() == 0
