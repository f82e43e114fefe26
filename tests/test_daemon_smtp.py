"""`maild run` over SMTP and LMTP with real clients on loopback."""

from __future__ import annotations

import shutil
import signal
import smtplib
import socket
import sqlite3
import ssl
import subprocess
import threading
from collections.abc import Iterator
from email.utils import make_msgid
from pathlib import Path

import pytest

from tests.conftest import skip_or_fail
from tests.daemon_helpers import (
    STORED_BYTES_SQL,
    RunningMaild,
    free_port,
    make_daemon,
    self_signed_certificate,
    wait_until,
)
from tests.mailmaker import support_mail


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[RunningMaild]:
    running = make_daemon(tmp_path)
    running.start()
    yield running
    running.stop()


def _send(port: int, raw: bytes, to: tuple[str, ...] = ("support@example.se",),
          sender: str = "anna.lind@bergstromsbygg.se") -> dict[str, tuple[int, bytes]]:
    with smtplib.SMTP("127.0.0.1", port, local_hostname="client.bergstromsbygg.se") as client:
        return client.sendmail(sender, list(to), raw)


class RawSession:
    """A line-by-line SMTP/LMTP conversation, for what smtplib cannot show."""

    def __init__(self, port: int | None = None, path: Path | None = None) -> None:
        if path is not None:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.connect(str(path))
        else:
            self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.file = self.sock.makefile("rb")
        self.reply()

    def reply(self) -> list[str]:
        lines = []
        while True:
            line = self.file.readline().decode().rstrip("\r\n")
            lines.append(line)
            if len(line) < 4 or line[3] != "-":
                return lines

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def command(self, line: str) -> list[str]:
        self.send(line.encode() + b"\r\n")
        return self.reply()

    def close(self) -> None:
        self.file.close()
        self.sock.close()


def test_smtp_delivery_is_stored_ticketed_and_acknowledged(daemon: RunningMaild) -> None:
    raw = support_mail(message_id="<smtp-1@bergstromsbygg.se>")
    with smtplib.SMTP("127.0.0.1", daemon.smtp_port,
                      local_hostname="client.bergstromsbygg.se") as client:
        client.ehlo()
        assert client.has_extn("size") and client.has_extn("8bitmime")
        assert not client.has_extn("auth"), "AUTH is off by default"
        client.mail("anna.lind@bergstromsbygg.se")
        client.rcpt("support+webb@example.se")
        code, message = client.data(raw)
    assert code == 250
    assert message.startswith(b"2.0.0 Stored as ")
    wait_until(lambda: daemon.count("ticket") == 1, what="the ticket")
    wait_until(lambda: daemon.count("outbox", "state = 'sent' AND purpose = 'ack'") == 1,
               what="the ack")
    [(stored,)] = daemon.query(STORED_BYTES_SQL)
    assert isinstance(stored, bytes)
    assert stored.startswith(b"Received: from client.bergstromsbygg.se ([127.0.0.1])")
    assert stored.endswith(raw), "the message itself is kept byte for byte"
    [(envelope,)] = daemon.query("SELECT envelope_recipients FROM inbound")
    assert "support+webb@example.se" in str(envelope)


def test_foreign_recipient_gets_550_and_maild_is_no_relay(daemon: RunningMaild) -> None:
    session = RawSession(daemon.smtp_port)
    session.command("EHLO client.example")
    assert session.command("MAIL FROM:<x@y.se>")[0].startswith("250")
    refused = session.command("RCPT TO:<someone@gmail.com>")
    assert refused == ["550 5.1.1 <someone@gmail.com>: no such support address here"]
    assert session.command("RCPT TO:<info@example.se>")[0].startswith("550 5.1.1")
    assert session.command("DATA")[0].startswith("503")
    session.close()
    assert daemon.count("inbound") == 0


def test_swaks_delivers(daemon: RunningMaild) -> None:
    if shutil.which("swaks") is None:
        skip_or_fail("swaks is not installed (apt-get install swaks)")
    done = subprocess.run(
        ["swaks", "--server", "127.0.0.1", "--port", str(daemon.smtp_port),
         "--from", "per.olsson@lindqvistlogistik.se", "--to", "support@example.se",
         "--header", "Subject: Fakturamodulen ligger nere",
         "--body", "Hej, vi kommer inte åt fakturamodulen sedan kl 08.15 i morse."],
        capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "250 2.0.0 Stored as" in done.stdout
    wait_until(lambda: daemon.count("ticket", "customer = 'lindqvist-logistik'") == 1)


def test_oversize_message_is_refused_with_552(tmp_path: Path) -> None:
    running = make_daemon(tmp_path, env={"MAILD_SMTP_MAX_MESSAGE_SIZE": "20000"})
    running.start()
    try:
        big = support_mail(body="x" * 60 + "\n" + ("Lång rad med text. " * 4 + "\n") * 1000)
        with pytest.raises(smtplib.SMTPSenderRefused) as refused:
            _send(running.smtp_port, big)  # smtplib declares SIZE=: refused at MAIL FROM
        assert refused.value.smtp_code == 552
        assert refused.value.smtp_error.startswith(b"5.3.4 Message too big")
        session = RawSession(running.smtp_port)
        session.command("EHLO client.example")
        session.command("MAIL FROM:<anna.lind@bergstromsbygg.se>")  # no SIZE declared
        session.command("RCPT TO:<support@example.se>")
        assert session.command("DATA")[0].startswith("354")
        session.send(big + b".\r\n")
        assert session.reply()[0].startswith("552 5.3.4 Message too big")
        session.close()
        assert _send(running.smtp_port, support_mail()) == {}, "the server goes on"
        wait_until(lambda: running.count("inbound") == 1)
    finally:
        assert running.stop() == 0


def test_starttls(tmp_path: Path) -> None:
    cert, key = self_signed_certificate(tmp_path)
    running = make_daemon(tmp_path, env={"MAILD_SMTP_TLS_CERT": str(cert),
                                         "MAILD_SMTP_TLS_KEY": str(key)})
    running.start()
    try:
        context = ssl.create_default_context(cafile=str(cert))
        with smtplib.SMTP("127.0.0.1", running.smtp_port, local_hostname="client") as client:
            client.ehlo()
            assert client.has_extn("starttls")
            client.starttls(context=context)
            client.ehlo()
            assert not client.has_extn("auth"), "AUTH stays off after STARTTLS"
            client.sendmail("anna.lind@bergstromsbygg.se", ["support@example.se"],
                            support_mail())
        wait_until(lambda: running.count("inbound") == 1)
        [(raw,)] = running.query(STORED_BYTES_SQL)
        assert b"with ESMTPS id" in raw
    finally:
        running.stop()


def test_451_while_the_database_cannot_be_written_then_250(daemon: RunningMaild) -> None:
    _send(daemon.smtp_port, support_mail(subject="före låset"))
    wait_until(lambda: daemon.count("inbound", "state = 'processed'") == 1)
    locker = sqlite3.connect(daemon.cwd / "var" / "maild.db", isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")
    locker.execute("INSERT INTO ticket_counter (scope, last) VALUES ('lock', 0)")
    raw = support_mail(subject="under låset", message_id="<locked@bergstromsbygg.se>")
    try:
        with pytest.raises(smtplib.SMTPDataError) as error:
            _send(daemon.smtp_port, raw)
        assert error.value.smtp_code == 451
        assert error.value.smtp_error.startswith(b"4.3.0")
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    assert _send(daemon.smtp_port, raw) == {}
    assert _send(daemon.smtp_port, raw) == {}, "a retry after success is a duplicate"
    wait_until(lambda: daemon.count("ticket") == 2, what="the ticket once the lock is gone",
               log=daemon.log)
    assert daemon.count("inbound", "message_id = 'locked@bergstromsbygg.se'") == 1


def test_lmtp_answers_per_recipient_on_tcp_and_unix_socket(tmp_path: Path) -> None:
    lmtp_port = free_port()
    sock = tmp_path / "lmtp.sock"
    running = make_daemon(tmp_path, "--lmtp", f"127.0.0.1:{lmtp_port}",
                          "--lmtp", f"unix:{sock}")
    running.start(wait_for=lmtp_port)
    try:
        for session in (RawSession(lmtp_port), RawSession(path=sock)):
            assert session.command("EHLO x")[0].startswith("500"), "LMTP wants LHLO"
            assert session.command("LHLO mx.example.se")[-1].startswith("250")
            session.command("MAIL FROM:<anna.lind@bergstromsbygg.se>")
            assert session.command("RCPT TO:<support@example.se>")[0].startswith("250")
            assert session.command("RCPT TO:<nobody@example.se>")[0].startswith("550 5.1.1")
            assert session.command("RCPT TO:<teknik@example.se>")[0].startswith("250")
            assert session.command("DATA")[0].startswith("354")
            session.send(support_mail(message_id=make_msgid()) + b".\r\n")
            first, second = session.reply(), session.reply()
            assert first[0].startswith("250 2.0.0 Stored as")
            assert first[0].endswith("for <support@example.se>")
            assert second[0].endswith("for <teknik@example.se>")
            session.command("QUIT")
            session.close()
        wait_until(lambda: running.count("inbound") == 2)
        [(raw,)] = running.query(STORED_BYTES_SQL + " LIMIT 1")
        assert b"with LMTP id" in raw
    finally:
        running.stop()


def test_smtp_smuggling_makes_one_message_not_two(daemon: RunningMaild) -> None:
    session = RawSession(daemon.smtp_port)
    session.command("EHLO client.example")
    session.command("MAIL FROM:<anna.lind@bergstromsbygg.se>")
    session.command("RCPT TO:<support@example.se>")
    session.command("DATA")
    session.send(b"From: anna.lind@bergstromsbygg.se\r\nSubject: legit\r\n\r\nHej!\n.\n"
                 b"MAIL FROM:<ceo@bergstromsbygg.se>\r\nRCPT TO:<support@example.se>\r\n"
                 b"DATA\r\nFrom: ceo@bergstromsbygg.se\r\nSubject: smuggled\r\n\r\nPay now\r\n"
                 b".\r\n")
    assert session.reply()[0].startswith("250 2.0.0 Stored as")
    session.command("QUIT")
    session.close()
    wait_until(lambda: daemon.count("inbound", "state = 'processed'") == 1)
    assert daemon.count("inbound") == 1, "the bare-LF dot did not end the message"
    [(raw,)] = daemon.query(STORED_BYTES_SQL)
    assert b"Subject: smuggled" in raw, "the smuggled part is body text of the one message"
    assert daemon.count("ticket") == 1


def test_sigterm_during_a_burst_loses_nothing_answered_250(tmp_path: Path) -> None:
    running = make_daemon(tmp_path)
    running.start()
    accepted: list[str] = []
    lock = threading.Lock()
    go = threading.Event()

    def sender(index: int) -> None:
        go.wait()
        for number in range(40):
            message_id = f"burst-{index}-{number}@bergstromsbygg.se"
            try:
                _send(running.smtp_port, support_mail(subject=f"skur {index}/{number}",
                                                      message_id=f"<{message_id}>",
                                                      body=f"Meddelande {index}/{number}.\n"))
            except (smtplib.SMTPException, OSError):
                return
            with lock:
                accepted.append(message_id)

    threads = [threading.Thread(target=sender, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    go.set()
    wait_until(lambda: len(accepted) >= 20, what="some accepted messages")
    running.signal(signal.SIGTERM)
    for thread in threads:
        thread.join(timeout=60)
    assert running.stop() == 0
    stored = {row[0] for row in running.query("SELECT message_id FROM inbound")}
    assert set(accepted) <= stored, f"answered 250 but lost: {set(accepted) - stored}"
    assert len(accepted) < 160, "the daemon stopped accepting"
    waiting = running.count("inbound", "state != 'processed'")
    running.start()
    wait_until(lambda: running.count("inbound", "state = 'processed'") == len(stored),
               what=f"the {waiting} messages left over to be processed after restart")
    running.stop()
