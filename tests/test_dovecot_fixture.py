"""The Dovecot test server itself: login, byte-exact storage, IDLE, restart, TLS and refusals."""

from __future__ import annotations

import os
import ssl
import time
from pathlib import Path

import pytest
from imapclient import IMAPClient
from imapclient.exceptions import LoginError

from tests import dovecot as dovecot_module
from tests.dovecot import USERS, DovecotServer
from tests.mailmaker import support_mail

SUPPORT = "support@example.se"
TEKNIK = "teknik@example.se"
EIGHT_BIT = ("From: kund@example.com\r\nTo: support@example.se\r\nSubject: Fakturan\r\n"
             "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
             "Content-Transfer-Encoding: 8bit\r\n\r\nHej! Fakturan från förra månaden "
             "saknas.\r\n\r\n/Åsa\r\n").encode()


def test_login_append_and_fetch_are_byte_identical(dovecot: DovecotServer) -> None:
    """A message appended with imapclient comes back with exactly the same bytes."""
    raw = support_mail()
    with IMAPClient(dovecot.host, dovecot.port, ssl=False, timeout=10) as imap:
        imap.login(SUPPORT, USERS[SUPPORT])
        imap.append("INBOX", raw)
        imap.append("INBOX", EIGHT_BIT, flags=[b"\\Seen"])
        imap.select_folder("INBOX")
        uids = imap.search("ALL")
        fetched = imap.fetch(uids, ["BODY.PEEK[]"])
    assert [fetched[uid][b"BODY[]"] for uid in sorted(uids)] == [raw, EIGHT_BIT]

    stored = dovecot.messages(SUPPORT)
    assert [message.raw for message in stored] == [raw, EIGHT_BIT]
    assert [message.flags for message in stored] == [(), ("\\Seen",)]
    assert dovecot.messages(TEKNIK) == []  # each user has a mailbox of its own


def test_helpers_append_with_flags_and_create_folders(dovecot: DovecotServer) -> None:
    """append() returns the UID, folders can be created and messages filed into them."""
    assert dovecot.folders(SUPPORT) == ["INBOX"]
    for folder in ("Processed", "Archive"):
        dovecot.create_folder(SUPPORT, folder)
    assert sorted(dovecot.folders(SUPPORT)) == ["Archive", "INBOX", "Processed"]
    assert dovecot.folders(TEKNIK) == ["INBOX"]

    first = dovecot.append(SUPPORT, support_mail(subject="Ett"), folder="Processed",
                           flags=["\\Seen", "$Ticketed"])
    second = dovecot.append(SUPPORT, support_mail(subject="Två"), folder="Processed")
    assert second > first
    messages = dovecot.messages(SUPPORT, "Processed")
    assert [message.uid for message in messages] == [first, second]
    assert set(messages[0].flags) == {"\\Seen", "$Ticketed"}
    assert dovecot.messages(SUPPORT) == []
    # Reading through messages() does not mark anything as seen.
    assert dovecot.messages(SUPPORT, "Processed")[1].flags == ()


def test_idle_sees_append_from_another_connection(dovecot: DovecotServer) -> None:
    """IDLE is advertised and an idling session hears about a new message within 2 s."""
    with dovecot.client(SUPPORT) as watcher:
        assert b"IDLE" in watcher.capabilities()
        watcher.select_folder("INBOX")
        watcher.idle()
        try:
            sent = time.monotonic()
            dovecot.append(SUPPORT, support_mail())
            responses: list[tuple[object, ...]] = []
            while time.monotonic() - sent < 2.0 and not any(
                    b"EXISTS" in response for response in responses):
                responses += watcher.idle_check(timeout=0.2)
            elapsed = time.monotonic() - sent
        finally:
            watcher.idle_done()
    assert (1, b"EXISTS") in responses, responses
    assert elapsed < 2.0


def test_restart_keeps_mailboxes_users_and_port(dovecot: DovecotServer) -> None:
    """After a restart the port is the same, the mail is still there and old sessions are cut."""
    raw = support_mail()
    uid = dovecot.append(SUPPORT, raw)
    dovecot.create_folder(TEKNIK, "Processed")
    dovecot.append(TEKNIK, EIGHT_BIT, folder="Processed")
    port = dovecot.port
    old_session = dovecot.client(SUPPORT)
    old_session.select_folder("INBOX")

    dovecot.restart()

    assert dovecot.running
    assert dovecot.port == port
    assert dovecot.messages(SUPPORT) == [(uid, (), raw)]
    assert [m.raw for m in dovecot.messages(TEKNIK, "Processed")] == [EIGHT_BIT]
    with pytest.raises((OSError, IMAPClient.Error, IMAPClient.AbortError)):
        old_session.noop()  # the server said BYE and closed the connection
    old_session.shutdown()
    with IMAPClient(dovecot.host, port, ssl=False, timeout=10) as imap:
        imap.login(SUPPORT, USERS[SUPPORT])
        assert imap.select_folder("INBOX")[b"EXISTS"] == 1


def test_stop_and_start_again(dovecot: DovecotServer) -> None:
    """A stopped server refuses connections and leaves no process; start() brings it back."""
    pid = dovecot.process_group
    assert pid is not None
    dovecot.stop()
    assert not dovecot.running
    with pytest.raises(ProcessLookupError):
        os.killpg(pid, 0)  # no Dovecot process is left in its process group
    with pytest.raises(OSError):
        IMAPClient(dovecot.host, dovecot.port, ssl=False, timeout=2)
    dovecot.start()
    with dovecot.client(TEKNIK) as imap:
        assert imap.select_folder("INBOX")[b"EXISTS"] == 0


def test_starttls_and_implicit_tls_verify_against_the_fixture_ca(
        dovecot_tls: DovecotServer) -> None:
    """STARTTLS and implicit TLS both work when the client trusts only the generated CA."""
    assert dovecot_tls.ca_path is not None and dovecot_tls.ca_path.exists()
    assert dovecot_tls.tls_port is not None
    context = ssl.create_default_context(cafile=str(dovecot_tls.ca_path))

    with IMAPClient(dovecot_tls.host, dovecot_tls.port, ssl=False, timeout=10) as imap:
        assert b"STARTTLS" in imap.capabilities()
        imap.starttls(context)
        imap.login(SUPPORT, USERS[SUPPORT])
        imap.append("INBOX", support_mail())
        assert imap.select_folder("INBOX")[b"EXISTS"] == 1

    with IMAPClient(dovecot_tls.host, dovecot_tls.tls_port, ssl=True, ssl_context=context,
                    timeout=10) as imap:
        imap.login(TEKNIK, USERS[TEKNIK])
        assert imap.select_folder("INBOX")[b"EXISTS"] == 0

    untrusting = ssl.create_default_context()
    untrusting.load_verify_locations(cadata=_unrelated_ca(dovecot_tls))
    with pytest.raises(ssl.SSLCertVerificationError):
        IMAPClient(dovecot_tls.host, dovecot_tls.tls_port, ssl=True,
                   ssl_context=untrusting, timeout=10)


def _unrelated_ca(server: DovecotServer) -> str:
    """The PEM text of a freshly made CA that did not sign `server`'s certificate."""
    ca, _cert, _key = dovecot_module.make_certificates(server.directory / "other-ca")
    return ca.read_text("ascii")


def test_plain_server_offers_no_tls(dovecot: DovecotServer) -> None:
    """The default fixture has TLS off: no STARTTLS, no TLS port, no CA."""
    assert dovecot.tls_port is None and dovecot.ca_path is None
    with dovecot.client() as imap:
        assert b"STARTTLS" not in imap.capabilities()


def test_wrong_password_and_unknown_user_are_refused(dovecot: DovecotServer) -> None:
    """A wrong password or an unknown user gets NO (0.5 s late on Dovecot 2.3); then login works."""
    with pytest.raises(LoginError):
        dovecot.client(SUPPORT, password="not-the-password")
    with pytest.raises(LoginError):
        dovecot.client("nobody@example.se", password="whatever")
    with dovecot.client(SUPPORT) as imap:
        assert imap.select_folder("INBOX")[b"EXISTS"] == 0


def test_added_user_can_log_in(dovecot: DovecotServer) -> None:
    """add_user() takes effect without a restart."""
    dovecot.add_user("faktura@example.se", "faktura-secret")
    dovecot.append("faktura@example.se", support_mail())
    assert len(dovecot.messages("faktura@example.se")) == 1


def test_close_removes_everything() -> None:
    """close() stops the server and deletes its directory, configuration and mail."""
    dovecot_module.require_dovecot()
    with DovecotServer() as server:
        directory, pid = server.directory, server.process_group
        assert pid is not None
        assert server.config_path.is_file() and server.log_path.is_file()
    assert not directory.exists()
    with pytest.raises(ProcessLookupError):
        os.killpg(pid, 0)


def test_start_failure_reports_the_log(monkeypatch: pytest.MonkeyPatch) -> None:
    """When Dovecot cannot start, the error says so and quotes Dovecot's own complaint."""
    dovecot_module.require_dovecot()
    original = DovecotServer._config
    monkeypatch.setattr(DovecotServer, "_config",
                        lambda self, owner: original(self, owner) + "no_such_setting = 1\n")
    server = DovecotServer()
    with pytest.raises(RuntimeError, match="Dovecot exited during start-up") as error:
        server.__enter__()
    assert "no_such_setting" in str(error.value)
    assert not server.directory.exists()


def test_missing_dovecot_skips_or_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the binary the fixture skips, unless MAILD_REQUIRE_SERVICES=1 makes it fail."""
    monkeypatch.setattr(dovecot_module, "dovecot_binary", lambda: None)
    monkeypatch.delenv("MAILD_REQUIRE_SERVICES", raising=False)
    with pytest.raises(pytest.skip.Exception, match=r"apt-get install dovecot-imapd"):
        dovecot_module.require_dovecot()
    monkeypatch.setenv("MAILD_REQUIRE_SERVICES", "1")
    with pytest.raises(pytest.fail.Exception, match=r"Dovecot is not installed"):
        dovecot_module.require_dovecot()


def test_everything_lives_in_the_temporary_directory(dovecot: DovecotServer) -> None:
    """Config, sockets, state, logs and Maildirs are under the server's own directory."""
    dovecot.append(SUPPORT, support_mail())
    root = dovecot.directory
    config = dovecot.config_path.read_text("utf-8")
    assert "!include" not in config
    values = [line.partition("=")[2] for line in config.splitlines() if "=" in line]
    paths = [word.lstrip("<") for value in values for word in value.split()
             if word.lstrip("<").startswith("/")]
    homes = [line.split(":")[5] for line in dovecot.passwd_path.read_text().splitlines()]
    assert len(paths) >= 6 and len(homes) == len(USERS)
    assert all(path.startswith(f"{root}/") for path in paths + homes), paths + homes
    assert "mail_location = maildir:~/Maildir" in config
    assert (root / "run" / "master.pid").is_file()
    assert (root / "state").is_dir()
    assert "starting up" in dovecot.log_path.read_text("utf-8")
    maildir = Path(dovecot.mail_root, SUPPORT, "Maildir")
    assert len(list((maildir / "new").iterdir()) + list((maildir / "cur").iterdir())) == 1
