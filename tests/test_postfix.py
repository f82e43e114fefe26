"""README's Postfix set-up, word for word, against a real Postfix: every mail becomes one ticket.

Postfix (tests/postfix.py) gets README's main.cf and master.cf blocks, with only
the paths changed to the test's directories; maild gets README's maild.toml
block. Mail is sent with swaks to Postfix, which validates the recipient and
hands the message to maild over LMTP (TCP and Unix socket) or the pipe.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, skip_or_fail
from tests.daemon_helpers import free_port, make_daemon, wait_until
from tests.mailmaker import support_mail
from tests.postfix import PostfixServer
from tests.readme_blocks import readme_block

LMTP_SECTION = "### Behind Postfix"
PIPE_SECTION = "### Behind an MTA pipe"
VENV_MAILD = Path(sys.executable).parent / "maild"
TIMEOUT = 90.0  # Postfix's queue manager and a loaded machine


def _maild_toml(directory: Path, extra: str = "") -> Path:
    """A maild.toml in `directory`: data under it, the shipped rules, and `extra`."""
    path = directory / "maild.toml"
    path.write_text(f'data_dir = "var"\nrules_dir = "{ROOT / "rules"}"\n\n[log]\n'
                    f'format = "json"\n\n{extra}')
    return path


def _substitute(text: str, postfix: PostfixServer, *, config: Path, maild: str,
                socket: Path | None = None) -> str:
    """README's paths replaced by the test's."""
    text = (text.replace("/etc/postfix/", f"{postfix.config_dir}/")
                .replace("/etc/maild/maild.toml", str(config))
                .replace("/opt/maild/.venv/bin/maild", maild))
    return text.replace("/run/maild/lmtp.sock", str(socket)) if socket else text


def _run_readme_setup(postfix: PostfixServer, config: Path) -> None:
    """README's set-up commands: the maild user must exist; the table is made and postmapped."""
    block = readme_block("# as root, once; the table again after each change to "
                         "rules/addresses.toml", LMTP_SECTION)
    for line in block.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        if line.startswith("useradd "):
            try:
                pwd.getpwnam("maild")
            except KeyError:
                skip_or_fail(f"no maild user; create it as README says: {line}")
            continue
        command = _substitute(line, postfix, config=config, maild=str(VENV_MAILD))
        if line.startswith("postmap "):
            postfix.postmap(Path(command.split()[-1]))  # with the test instance's main.cf
            continue
        done = subprocess.run(["bash", "-c", command], capture_output=True, text=True,
                              timeout=120, check=False)
        assert done.returncode == 0, f"{command}\n{done.stderr}"


def _swaks(postfix: PostfixServer, *args: str) -> subprocess.CompletedProcess[str]:
    if shutil.which("swaks") is None:
        skip_or_fail("swaks is not installed (apt-get install swaks)")
    return subprocess.run(["swaks", "--server", "127.0.0.1", "--port", str(postfix.port),
                           "--helo", "client.bergstromsbygg.se", *args],
                          capture_output=True, text=True, timeout=120, check=False)


def _send_file(postfix: PostfixServer, raw: bytes, directory: Path, sender: str,
               *recipients: str) -> subprocess.CompletedProcess[str]:
    message = directory / f"message-{len(list(directory.glob('message-*')))}.eml"
    message.write_bytes(raw)
    return _swaks(postfix, "--from", sender, "--to", ",".join(recipients),
                  "--data", f"@{message}")


def _sent(postfix: PostfixServer, count: int) -> None:
    wait_until(lambda: sum(" status=sent " in line for line in postfix.deliveries()) >= count,
               timeout=TIMEOUT, what=f"{count} deliveries logged by Postfix", log=postfix.log)


# --- LMTP ------------------------------------------------------------------------------------

def _lmtp_postfix(postfix: PostfixServer, config: Path, *, transport: str | None = None,
                  socket: Path | None = None) -> None:
    main_cf = _substitute(readme_block("# /etc/postfix/main.cf", LMTP_SECTION), postfix,
                          config=config, maild=str(VENV_MAILD), socket=socket)
    if transport is not None:
        main_cf += f"virtual_transport = {transport}\n"
    master_cf = readme_block("# /etc/postfix/master.cf", LMTP_SECTION)
    postfix.configure(main_cf, master_cf)
    _run_readme_setup(postfix, config)
    postfix.start()


def test_lmtp_over_tcp_one_ticket_and_unknown_recipients_refused_at_rcpt(
        tmp_path: Path, postfix_server: PostfixServer) -> None:
    lmtp_port = free_port()
    daemon = make_daemon(tmp_path, "--lmtp", f"127.0.0.1:{lmtp_port}")
    config = _maild_toml(daemon.cwd)
    daemon.env["MAILD_CONFIG"] = str(config)
    daemon.start(wait_for=lmtp_port)
    try:
        _lmtp_postfix(postfix_server, config, transport=f"lmtp:inet:127.0.0.1:{lmtp_port}")
        refused = _swaks(postfix_server, "--from", "anna.lind@bergstromsbygg.se",
                         "--to", "nobody@example.se")
        assert refused.returncode != 0
        assert "<** 550 5.1.1 <nobody@example.se>" in refused.stdout, refused.stdout
        assert "User unknown in virtual mailbox table" in refused.stdout
        sent = _send_file(postfix_server, support_mail(to="support+webb@example.se"), tmp_path,
                          "anna.lind@bergstromsbygg.se", "support+webb@example.se")
        assert sent.returncode == 0, sent.stdout + sent.stderr
        _sent(postfix_server, 1)
        wait_until(lambda: daemon.count("ticket") == 1, timeout=TIMEOUT, log=daemon.log)
        [line] = [line for line in postfix_server.deliveries() if " status=" in line]
        assert "relay=127.0.0.1" in line and "250 2.0.0 Stored as" in line, line
        assert daemon.count("inbound") == 1
        [(recipients,)] = daemon.query("SELECT envelope_recipients FROM inbound")
        assert "support+webb@example.se" in str(recipients)
        assert "NOQUEUE: reject: RCPT from" in postfix_server.log(), "refused by Postfix"
    finally:
        daemon.stop()


def test_lmtp_over_the_unix_socket_with_the_documented_ownership(
        tmp_path: Path, postfix_server: PostfixServer) -> None:
    run = postfix_server.root / "run"
    run.mkdir(mode=0o755)
    sock = run / "lmtp.sock"
    daemon = make_daemon(tmp_path)
    lmtp_toml = readme_block("# /etc/maild/maild.toml", LMTP_SECTION)
    config = _maild_toml(daemon.cwd, lmtp_toml.replace("/run/maild/lmtp.sock", str(sock)))
    daemon.env["MAILD_CONFIG"] = str(config)
    daemon.start()
    try:
        wait_until(sock.exists, log=daemon.log)
        info = sock.stat()
        assert stat.S_IMODE(info.st_mode) == 0o660
        assert info.st_gid == pwd.getpwnam("postfix").pw_gid
        _lmtp_postfix(postfix_server, config, socket=sock)
        sent = _send_file(postfix_server, support_mail(), tmp_path,
                          "anna.lind@bergstromsbygg.se", "support@example.se")
        assert sent.returncode == 0, sent.stdout + sent.stderr
        _sent(postfix_server, 1)
        wait_until(lambda: daemon.count("ticket") == 1, timeout=TIMEOUT, log=daemon.log)
        assert "Permission denied" not in postfix_server.log()
        assert daemon.count("inbound") == 1
    finally:
        daemon.stop()


# --- pipe ------------------------------------------------------------------------------------

def _maild_command_for_pipe(directory: Path) -> str:
    """A maild command the `maild` user can run: the venv's, or the system Python on this tree.

    When the venv's interpreter lives where other users cannot read (a Python under
    /root), `deliver`'s quick path needs only the standard library, so the system's
    Python 3.11 runs it from this source tree; the database is then made beforehand.
    """
    def runs(command: str) -> bool:
        done = subprocess.run(["runuser", "-u", "maild", "--", command, "--version"],
                              capture_output=True, timeout=60, check=False)
        return done.returncode == 0

    if runs(str(VENV_MAILD)):
        return str(VENV_MAILD)
    # A copy of the package where the `maild` user can read it, wherever the checkout is.
    source = directory / "src"
    shutil.copytree(ROOT / "maild", source / "maild",
                    ignore=shutil.ignore_patterns("__pycache__"))
    for path in [source, *source.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    wrapper = directory / "maild"
    wrapper.write_text(f'#!/bin/sh\nPYTHONPATH={source} exec /usr/bin/python3 -m maild.cli "$@"\n')
    wrapper.chmod(0o755)
    if not runs(str(wrapper)):
        skip_or_fail(f"the maild user can run neither {VENV_MAILD} nor the system's Python "
                     "3.11 on this source tree")
    return str(wrapper)


class PipeSite:
    """maild's data and configuration for the pipe, owned by the `maild` user."""

    def __init__(self, postfix: PostfixServer) -> None:
        self.directory = postfix.root / "maild"
        self.directory.mkdir(mode=0o755)
        self.config = _maild_toml(self.directory)
        self.command = _maild_command_for_pipe(self.directory)
        self.run_as_root("process")  # creates and migrates the database
        self.give_to_maild()

    def run_as_root(self, *args: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([sys.executable, "-m", "maild.cli", "--config", str(self.config),
                               *args], capture_output=True, text=True, timeout=120,
                              check=False, cwd=self.directory)
        assert done.returncode == 0, done.stderr
        return done

    def give_to_maild(self) -> None:
        for path in [self.directory / "var", *(self.directory / "var").rglob("*")]:
            shutil.chown(path, user="maild", group="maild")

    def query(self, sql: str) -> list[tuple[object, ...]]:
        with sqlite3.connect(self.directory / "var" / "maild.db") as connection:
            return connection.execute(sql).fetchall()


def _pipe_postfix(postfix: PostfixServer, site: PipeSite) -> None:
    main_cf = readme_block("# /etc/postfix/main.cf", PIPE_SECTION)
    master_cf = _substitute(readme_block("# /etc/postfix/master.cf", PIPE_SECTION), postfix,
                            config=site.config, maild=site.command)
    postfix.configure(_substitute(main_cf, postfix, config=site.config, maild=site.command),
                      master_cf)
    _run_readme_setup(postfix, site.config)
    postfix.start()


def test_pipe_with_several_recipients_makes_one_ticket_and_postfix_logs_stored(
        tmp_path: Path, postfix_server: PostfixServer) -> None:
    site = PipeSite(postfix_server)
    _pipe_postfix(postfix_server, site)
    raw = support_mail(to="support@example.se, teknik@example.se")
    sent = _send_file(postfix_server, raw, tmp_path, "anna.lind@bergstromsbygg.se",
                      "support@example.se", "teknik+webb@example.se")
    assert sent.returncode == 0, sent.stdout + sent.stderr
    _sent(postfix_server, 2)
    lines = [line for line in postfix_server.deliveries() if "status=sent" in line]
    assert all("relay=maild" in line and "stored as inbound 1" in line for line in lines), lines
    assert "{" not in "".join(lines), "no JSON log line in Postfix's log"
    [(sender, recipients)] = site.query("SELECT envelope_sender, envelope_recipients "
                                        "FROM inbound")
    assert sender == "anna.lind@bergstromsbygg.se"
    assert sorted(json.loads(str(recipients))) == ["support@example.se", "teknik+webb@example.se"]
    assert "processed 1" in site.run_as_root("process").stdout
    assert site.query("SELECT count(*) FROM ticket") == [(1,)]


def test_pipe_storage_trouble_defers_and_never_bounces(
        tmp_path: Path, postfix_server: PostfixServer) -> None:
    site = PipeSite(postfix_server)
    _pipe_postfix(postfix_server, site)
    data = site.directory / "var"
    data.chmod(0o555)  # the maild user cannot write its data directory
    (data / "maild.db").chmod(0o444)
    try:
        sent = _send_file(postfix_server, support_mail(), tmp_path,
                          "anna.lind@bergstromsbygg.se", "support@example.se")
        assert sent.returncode == 0
        wait_until(lambda: any("status=deferred" in line for line in postfix_server.deliveries()),
                   timeout=TIMEOUT, log=postfix_server.log)
    finally:
        data.chmod(0o755)
        (data / "maild.db").chmod(0o644)
    [deferred] = [line for line in postfix_server.deliveries() if "status=deferred" in line][:1]
    assert "temporary failure, message not stored" in deferred, deferred
    assert "Traceback" not in postfix_server.log()
    postfix_server.postfix("flush", check=False)
    _sent(postfix_server, 1)
    assert not [line for line in postfix_server.deliveries() if "status=bounced" in line]
    assert site.query("SELECT count(*) FROM inbound") == [(1,)]


def test_pipe_bounce_with_the_null_sender_is_stored_with_an_empty_sender(
        tmp_path: Path, postfix_server: PostfixServer) -> None:
    site = PipeSite(postfix_server)
    _pipe_postfix(postfix_server, site)
    report = (b"From: MAILER-DAEMON@mx.kund.se (Mail Delivery System)\r\n"
              b"To: support@example.se\r\nSubject: Undelivered Mail Returned to Sender\r\n"
              b"Message-ID: <bounce-1@mx.kund.se>\r\nMIME-Version: 1.0\r\n"
              b'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r\n'
              b"\r\n--b\r\nContent-Type: text/plain\r\n\r\nI'm sorry to have to inform you that "
              b"your message could not be delivered.\r\n--b\r\n"
              b"Content-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.kund.se\r\n"
              b"\r\nFinal-Recipient: rfc822; gone@kund.se\r\nAction: failed\r\n"
              b"Status: 5.1.1\r\n--b--\r\n")
    sent = _send_file(postfix_server, report, tmp_path, "<>", "support@example.se")
    assert sent.returncode == 0, sent.stdout + sent.stderr
    assert "MAIL FROM:<>" in sent.stdout
    _sent(postfix_server, 1)
    [(sender,)] = site.query("SELECT envelope_sender FROM inbound")
    assert sender == "", f"stored sender {sender!r}, not the null sender"
    site.run_as_root("process")
    assert site.query("SELECT kind FROM inbound") == [("bounce",)]
    assert site.query("SELECT count(*) FROM ticket") == [(0,)], "a bounce opens no ticket"
    assert site.query("SELECT count(*) FROM outbox") == [(0,)], "and is never answered"


@pytest.fixture(autouse=True)
def _no_maild_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in [key for key in os.environ if key.startswith("MAILD_")
                and key != "MAILD_REQUIRE_SERVICES"]:
        monkeypatch.delenv(key)

