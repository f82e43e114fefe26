"""A large mail (more than a batch reads at once) is processed as a small one is.

On SQLite it is parsed while read from its row a piece at a time, and its team copy
takes the original from its row a piece at a time as well; the copy must still carry
it byte for byte, and the ticket be what parsing the whole bytes gives.
"""

from __future__ import annotations

import os
import signal
import smtplib
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from email import message_from_bytes
from email.policy import default
from pathlib import Path

import pytest
from sqlmodel import Session, col, select

import maild.processing as processing_module
import maild.sqlite_blobs as sqlite_blobs_module
import maild.transports.pipe as pipe_module
from maild.db import StorageError
from maild.intake import Arrival, Stored, store_batch, store_inbound
from maild.models import InboundRaw, Outbox, table_of, utcnow
from maild.parse import parse_mail
from maild.processing import BATCH_RAW_LIMIT
from maild.runtime import Runtime
from maild.sqlite_blobs import blob_pieces, insert_with_blob
from maild.sqlite_pieces import LARGE_BYTES, write_pieces
from maild.transports.pipe import PipeStoreError, store_sqlite
from tests.conftest import MaildCLI
from tests.daemon_helpers import make_daemon
from tests.mailmaker import authenticated_message, support_mail
from tests.pipeline_helpers import filled, receive, stored_bytes, tickets

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



def test_a_large_mail_is_stored_byte_for_byte_by_every_way_in(runtime: Runtime) -> None:
    one, two = (_large_mail(os.urandom(1_500_000)) for _ in range(2))
    assert min(len(one), len(two)) >= LARGE_BYTES  # written a piece at a time on SQLite
    first = store_inbound(runtime.engine, one, transport="smtp")
    [second, copy] = store_batch(runtime.engine, [Arrival(two, "smtp"), Arrival(two, "lmtp")])
    assert isinstance(second, Stored) and isinstance(copy, Stored) and copy.duplicate
    assert stored_bytes(runtime, first.inbound_id) == one
    assert stored_bytes(runtime, second.inbound_id) == two


def test_the_mta_pipe_stores_a_large_mail_byte_for_byte(sqlite_runtime: Runtime) -> None:
    raw = _large_mail(os.urandom(2_500_000))  # more than one piece of a MB
    database = sqlite_runtime.engine.url.database
    assert database is not None
    stored = store_sqlite(Path(database), raw, sender="anna.lind@bergstromsbygg.se",
                          recipients=["support@example.se"])
    assert stored is not None and not stored.duplicate
    assert stored_bytes(sqlite_runtime, stored.inbound_id) == raw


_STORE_PEAK = """
import sys
from pathlib import Path
from maild.config import load_config
from maild.intake import Arrival, store_batch, store_inbound
from maild.runtime import open_runtime
from maild.transports.pipe import PipeStoreError, store_sqlite

def kib(field):
    return next(int(line.split()[1]) for line in Path("/proc/self/status").read_text()
                .splitlines() if line.startswith(field + ":"))

runtime = open_runtime(load_config(env={}, overrides={"data_dir": sys.argv[1]}))
store_inbound(runtime.engine, b"Subject: warm\\r\\n\\r\\nup\\r\\n", transport="smtp")
raw = b"Subject: large\\r\\n\\r\\n" + b"QUJD" * 5_000_000
Path("/proc/self/clear_refs").write_text("5")
before = kib("VmRSS")
if sys.argv[2] == "batch":
    store_batch(runtime.engine, [Arrival(raw, "smtp")])
elif sys.argv[2] == "pipe":
    store_sqlite(Path(runtime.engine.url.database), raw, sender=None, recipients=[])
else:
    store_inbound(runtime.engine, raw, transport="smtp")
print((kib("VmHWM") - before) * 1024 / len(raw))
"""


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="Linux's /proc only")
@pytest.mark.parametrize("way", ["batch", "one", "pipe"])
def test_storing_a_large_mail_on_sqlite_holds_no_copy_of_it(tmp_path: Path, way: str) -> None:
    """SQLite copied a bound blob and built its record from the copy: twice the message."""
    done = subprocess.run([sys.executable, "-c", _STORE_PEAK, str(tmp_path), way],
                          check=False, capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).resolve().parent.parent)
    assert done.returncode == 0, done.stderr
    added = float(done.stdout.splitlines()[-1])  # after the log lines
    assert added < 0.5, f"peak RSS added: {added:.2f} of the message's size"


# Sends a 20 MB mail of 78-byte lines to the port given; prints its size.
_SMTP_CLIENT = """
import smtplib, sys
line = b"QUJD" * 19 + b"\\r\\n"
raw = b"From: a@kund.se\\r\\nSubject: stor\\r\\n\\r\\n" + line * 256_000
with smtplib.SMTP("127.0.0.1", int(sys.argv[1])) as smtp:
    smtp.sendmail("a@kund.se", ["support@example.se"], raw)
print(len(raw))
"""

_SMTP_PEAK = """
import asyncio, subprocess, sys, threading
from pathlib import Path
from maild.config import load_config
from maild.group_commit import GroupCommitter
from maild.routing.reload import LiveRules
from maild.runtime import open_runtime
from maild.transports.smtp import IntakeHandler, make_server_factory

def kib(field):
    return next(int(line.split()[1]) for line in Path("/proc/self/status").read_text()
                .splitlines() if line.startswith(field + ":"))

config = load_config(env={}, overrides={"data_dir": sys.argv[1], "rules_dir": sys.argv[2]})
runtime = open_runtime(config)
live = LiveRules(config.rules_dir)
committer = GroupCommitter(runtime.engine)
handler = IntakeHandler(store=committer.store, rules=lambda: live.current, hostname="test",
                        protocol="smtp")
loop = asyncio.new_event_loop()
threading.Thread(target=loop.run_forever, daemon=True).start()

async def start():
    committer.start()
    server = await loop.create_server(make_server_factory(
        handler, hostname="test", max_size=config.max_message_size, timeout=60, tls=None),
        "127.0.0.1", 0)
    return server.sockets[0].getsockname()[1]

port = asyncio.run_coroutine_threadsafe(start(), loop).result()
send = sys.argv[3]
subprocess.run([sys.executable, "-c", send, str(port)], check=True, capture_output=True)
Path("/proc/self/clear_refs").write_text("5")
before = kib("VmRSS")
done = subprocess.run([sys.executable, "-c", send, str(port)], check=True,
                      capture_output=True, text=True)
print((kib("VmHWM") - before) * 1024 / int(done.stdout))
"""


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="Linux's /proc only")
def test_a_large_mail_over_smtp_takes_less_than_three_times_its_size(tmp_path: Path) -> None:
    """Read a line at a time and stored whole, a 20 MB mail took four times its size."""
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run([sys.executable, "-c", _SMTP_PEAK, str(tmp_path), str(root / "rules"),
                           _SMTP_CLIENT], check=False, capture_output=True, text=True,
                          timeout=120, cwd=root)
    assert done.returncode == 0, done.stderr
    added = float(done.stdout.splitlines()[-1])  # after the log lines
    assert added < 3, f"peak RSS added: {added:.2f} of the message's size"


def _failing_midway(connection: sqlite3.Connection, table: str, column: str, row_id: int,
                    parts: Sequence[bytes]) -> None:
    """Writes the first MB of the message, then fails as a full disk would."""
    write_pieces(connection, table, column, row_id, [parts[0][:1024 * 1024]])
    raise sqlite3.OperationalError("database or disk is full")


def _stored_rows(runtime: Runtime) -> int:
    with runtime.engine.begin() as connection:
        return len(connection.execute(select(table_of(InboundRaw).c.inbound_id)).all())


def test_a_large_mail_whose_writing_fails_midway_is_refused_whole_and_stored_on_retry(
        sqlite_runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    raw = _large_mail(os.urandom(2_500_000))
    database = sqlite_runtime.engine.url.database
    assert database is not None
    monkeypatch.setattr(sqlite_blobs_module, "write_pieces", _failing_midway)
    monkeypatch.setattr(pipe_module, "write_pieces", _failing_midway)
    [refused] = store_batch(sqlite_runtime.engine, [Arrival(raw, "smtp")])
    assert isinstance(refused, StorageError) and "disk is full" in str(refused)
    with pytest.raises(PipeStoreError, match="disk is full"):
        store_sqlite(Path(database), raw, sender=None, recipients=[])
    assert _stored_rows(sqlite_runtime) == 0  # no row of zeros, no half-written message
    monkeypatch.undo()
    [stored] = store_batch(sqlite_runtime.engine, [Arrival(raw, "smtp")])
    assert isinstance(stored, Stored) and not stored.duplicate
    assert stored_bytes(sqlite_runtime, stored.inbound_id) == raw


def _twenty_megabytes(message_id: str) -> bytes:
    """A 20 MB mail of 78-byte lines: written a piece at a time on SQLite."""
    return (b"From: anna.lind@bergstromsbygg.se\r\nTo: support@example.se\r\n"
            b"Subject: stor logg\r\nMessage-ID: <" + message_id.encode() + b">\r\n\r\n"
            + (b"QUJD" * 19 + b"\r\n") * 256_000)


def _wal_size(wal: Path) -> int:
    return wal.stat().st_size if wal.exists() else 0


def _kill_a_quarter_in(wal: Path, baseline: int, size: int, running: Callable[[], bool],
                       kill: Callable[[], None]) -> None:
    """Call `kill` once the write-ahead log has grown by a quarter of `size` beyond
    `baseline`: the transaction storing a mail of `size` bytes is under way, uncommitted."""
    deadline = time.monotonic() + 60
    while running() and time.monotonic() < deadline:
        if _wal_size(wal) > baseline + size // 4:
            kill()
            return
        time.sleep(0.0005)


def test_maild_deliver_killed_while_writing_a_large_mail_leaves_nothing_half_written(
        maild: MaildCLI) -> None:
    """kill -9 in the middle of the pieces of a 20 MB mail: the MTA saw no 0 and retries;
    the database holds no row of it, and the retry stores it byte for byte."""
    small = support_mail()
    assert maild("deliver", "support@example.se", input=small).code == 0
    raw = _twenty_megabytes("killed-large@bergstromsbygg.se")
    wal = maild.cwd / "var" / "maild.db-wal"
    baseline = _wal_size(wal)
    deliver = subprocess.Popen([sys.executable, "-m", "maild.cli", "deliver",
                                "support@example.se"], cwd=maild.cwd, env=maild.env,
                               stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    assert deliver.stdin is not None
    deliver.stdin.write(raw)
    deliver.stdin.close()
    _kill_a_quarter_in(wal, baseline, len(raw), lambda: deliver.poll() is None, deliver.kill)
    assert deliver.wait(30) == -signal.SIGKILL, "killed before it could finish"
    assert _inbound_sizes(maild) == [len(small)]
    retry = maild("deliver", "support@example.se", input=raw)
    assert retry.code == 0, retry.stderr
    assert _inbound_sizes(maild) == [len(small), len(raw)]
    with sqlite3.connect(maild.cwd / "var" / "maild.db") as connection:
        [(stored,)] = connection.execute(
            "SELECT inbound_raw.raw FROM inbound_raw JOIN inbound "
            "ON inbound.id = inbound_raw.inbound_id WHERE inbound.size = ?",
            (len(raw),)).fetchall()
    assert stored == raw


def _inbound_sizes(maild: MaildCLI) -> list[int]:
    with sqlite3.connect(maild.cwd / "var" / "maild.db") as connection:
        return [size for (size,) in connection.execute("SELECT size FROM inbound")]


def test_the_daemon_killed_while_storing_a_large_mail_answered_nothing_and_kept_nothing(
        tmp_path: Path) -> None:
    """kill -9 of `maild run` in the middle of a 20 MB mail's pieces: the client got no 250,
    no row of it is left, and once the daemon is back the client's retry is stored whole."""
    daemon = make_daemon(tmp_path)
    daemon.start()
    raw = _twenty_megabytes("killed-smtp@bergstromsbygg.se")
    answers: list[object] = []

    def send() -> None:
        try:
            with smtplib.SMTP("127.0.0.1", daemon.smtp_port, timeout=60) as client:
                answers.append(client.sendmail("anna.lind@bergstromsbygg.se",
                                               ["support@example.se"], raw))
        except (smtplib.SMTPException, OSError) as error:
            answers.append(error)

    wal = daemon.cwd / "var" / "maild.db-wal"
    baseline = _wal_size(wal)
    sender = threading.Thread(target=send)
    try:
        sender.start()
        _kill_a_quarter_in(wal, baseline, len(raw), sender.is_alive, daemon.kill)
        sender.join(60)
        assert daemon.process is not None and daemon.process.returncode == -signal.SIGKILL, (
            "killed before the mail was stored")
        [answer] = answers
        assert isinstance(answer, (smtplib.SMTPException, OSError)), "no 250 for it"
        assert daemon.count("inbound") == 0
        daemon.start()
        with smtplib.SMTP("127.0.0.1", daemon.smtp_port, timeout=60) as client:
            assert client.sendmail("anna.lind@bergstromsbygg.se", ["support@example.se"],
                                   raw) == {}
        [(stored,)] = daemon.query("SELECT raw FROM inbound_raw")
        assert isinstance(stored, bytes) and stored.endswith(raw)
        assert stored.startswith(b"Received: ")
    finally:
        daemon.stop()
