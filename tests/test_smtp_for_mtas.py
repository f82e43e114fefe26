"""What an MTA in front of maild relies on: PIPELINING, logged size refusals, the LMTP socket."""

from __future__ import annotations

import grp
import os
import socket
import stat
import subprocess
import sys
from email.utils import make_msgid
from pathlib import Path

from tests.daemon_helpers import free_port, make_daemon, wait_until
from tests.mailmaker import support_mail
from tests.test_daemon_smtp import RawSession


def test_pipelining_is_advertised_and_a_pipelined_client_is_answered_in_order(
        tmp_path: Path) -> None:
    running = make_daemon(tmp_path)
    running.start()
    try:
        session = RawSession(running.smtp_port)
        assert "250-PIPELINING" in session.command("EHLO client.bergstromsbygg.se")
        mail = support_mail(message_id=make_msgid())
        # RFC 2920: the envelope in one write, then the message after 354.
        session.send(b"MAIL FROM:<anna.lind@bergstromsbygg.se>\r\n"
                     b"RCPT TO:<nobody@example.se>\r\nRCPT TO:<support@example.se>\r\n"
                     b"DATA\r\n")
        replies = [session.reply()[0] for _ in range(4)]
        assert [reply[:3] for reply in replies] == ["250", "550", "250", "354"], replies
        session.send(mail + b".\r\nQUIT\r\n")
        assert session.reply()[0].startswith("250 2.0.0 Stored as")
        assert session.reply()[0].startswith("221")
        session.close()
        wait_until(lambda: running.count("inbound") == 1, log=running.log)
    finally:
        running.stop()


def test_lhlo_advertises_pipelining(tmp_path: Path) -> None:
    lmtp_port = free_port()
    running = make_daemon(tmp_path, "--lmtp", f"127.0.0.1:{lmtp_port}")
    running.start(wait_for=lmtp_port)
    try:
        session = RawSession(lmtp_port)
        assert "250-PIPELINING" in session.command("LHLO mx.example.se")
        session.close()
    finally:
        running.stop()


def test_each_size_refusal_is_logged_once_with_client_and_size(tmp_path: Path) -> None:
    running = make_daemon(tmp_path, env={"MAILD_SMTP_MAX_MESSAGE_SIZE": "20000"})
    running.start()
    try:
        session = RawSession(running.smtp_port)
        session.command("EHLO big.sender.example")
        refused = session.command("MAIL FROM:<anna.lind@bergstromsbygg.se> SIZE=123456")
        assert refused[0].startswith("552 5.3.4")
        session.command("MAIL FROM:<anna.lind@bergstromsbygg.se>")
        session.command("RCPT TO:<support@example.se>")
        assert session.command("DATA")[0].startswith("354")
        big = support_mail(body=("Lång rad med text. " * 4 + "\n") * 1000)
        session.send(big + b".\r\n")
        assert session.reply()[0].startswith("552 5.3.4")
        session.command("QUIT")
        session.close()
        wait_until(lambda: len(running.events("smtp.too_big")) >= 2, log=running.log)
        declared, sent = running.events("smtp.too_big")
        assert (declared["stage"], declared["size"]) == ("mail", 123456)
        assert sent["stage"] == "data"
        assert isinstance(sent["size"], int) and sent["size"] >= len(big)
        for event in (declared, sent):
            assert event["peer"] == "127.0.0.1"
            assert event["helo"] == "big.sender.example"
            assert event["limit"] == 20000
            assert event["level"] == "warning"
    finally:
        running.stop()
    assert len(running.events("smtp.too_big")) == 2, "once per refusal"
    assert running.count("inbound") == 0


def _other_group() -> grp.struct_group:
    """A group other than the test's own when running as root (as CI does), else our own."""
    if os.geteuid() == 0:
        for name in ("postfix", "nogroup", "daemon"):
            try:
                return grp.getgrnam(name)
            except KeyError:
                continue
    return grp.getgrgid(os.getgid())


def test_lmtp_unix_socket_gets_the_configured_group_and_mode(tmp_path: Path) -> None:
    sock = tmp_path / "run" / "lmtp.sock"
    sock.parent.mkdir()
    group = _other_group()
    running = make_daemon(tmp_path, "--lmtp", f"unix:{sock}", env={
        "MAILD_LMTP_SOCKET_GROUP": group.gr_name, "MAILD_LMTP_SOCKET_MODE": "0620"})
    running.start()
    try:
        wait_until(sock.exists)
        info = sock.stat()
        assert stat.S_ISSOCK(info.st_mode)
        assert stat.S_IMODE(info.st_mode) == 0o620
        assert info.st_gid == group.gr_gid
        assert [path.name for path in sock.parent.iterdir()] == ["lmtp.sock"], "no temp left"
        client = socket.socket(socket.AF_UNIX)
        client.connect(str(sock))
        assert client.recv(100).startswith(b"220")
        client.close()
    finally:
        running.stop()
    running.start()  # a stale socket from the last run is replaced
    running.stop()


def test_lmtp_socket_default_mode_and_refusals(tmp_path: Path) -> None:
    sock = tmp_path / "lmtp.sock"
    sock.write_bytes(b"not a socket")
    running = make_daemon(tmp_path, "--lmtp", f"unix:{sock}")
    done = subprocess.run([sys.executable, "-m", "maild.cli", *running.args], cwd=running.cwd,
                          env=running.env, capture_output=True, text=True, timeout=120,
                          check=False)
    assert done.returncode == 69, done.stderr
    assert "exists and is not a socket" in done.stderr
    assert sock.read_bytes() == b"not a socket", "never replaced"
    unknown = make_daemon(tmp_path, "--lmtp", f"unix:{tmp_path / 'other.sock'}",
                          env={"MAILD_LMTP_SOCKET_GROUP": "no-such-group-here"})
    done = subprocess.run([sys.executable, "-m", "maild.cli", *unknown.args], cwd=unknown.cwd,
                          env=unknown.env, capture_output=True, text=True, timeout=120,
                          check=False)
    assert done.returncode == 69
    assert "lmtp.socket_group: no group 'no-such-group-here'" in done.stderr
    sock.unlink()
    running.start()
    try:
        wait_until(sock.exists)
        assert stat.S_IMODE(sock.stat().st_mode) == 0o660
    finally:
        running.stop()
