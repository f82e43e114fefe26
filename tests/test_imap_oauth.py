"""XOAUTH2 against a real Dovecot whose oauth2 passdb asks a token endpoint on loopback.

Microsoft 365 and Gmail accept only OAuth 2.0 for IMAP. What users of other help
desks meet most is a mailbox that silently stops being read when its token
expires; maild logs every refused login loudly, shows it in its status, and
keeps retrying with backoff until the token works again.
"""

from __future__ import annotations

import contextlib
import socket
from pathlib import Path

import pytest

from maild.runtime import Runtime
from maild.transports.imap import ImapAuthError, read_secret
from tests.daemon_helpers import log_events, make_daemon, wait_until
from tests.dovecot import DovecotServer
from tests.mailmaker import support_mail
from tests.test_imap import USER, account, poll_once, stored
from tests.token_endpoint import TokenEndpoint


def test_xoauth2_login_fetches_the_mailbox(dovecot_oauth2: DovecotServer,
                                           token_endpoint: TokenEndpoint,
                                           sqlite_runtime: Runtime, tmp_path: Path) -> None:
    dovecot_oauth2.append(USER, support_mail(subject="via oauth", message_id="<oauth@b.se>"))
    token_endpoint.tokens["ya29.valid"] = USER
    token_file = tmp_path / "token"
    token_file.write_text("ya29.valid\n")
    imap = account(dovecot_oauth2, password=None, oauth2_token_file=token_file)
    assert poll_once(sqlite_runtime, imap) == 1
    assert [row.message_id for row in stored(sqlite_runtime)] == ["oauth@b.se"]
    assert token_endpoint.asked >= 1, "Dovecot asked the endpoint about the token"


def test_a_refused_token_names_the_server_and_the_mechanism(
        dovecot_oauth2: DovecotServer, token_endpoint: TokenEndpoint,
        sqlite_runtime: Runtime, tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("ya29.expired\n")
    imap = account(dovecot_oauth2, password=None, oauth2_token_file=token_file)
    with pytest.raises(ImapAuthError, match=r"refused the XOAUTH2 login of support@example\.se"):
        poll_once(sqlite_runtime, imap)
    assert stored(sqlite_runtime) == []


def test_a_failing_token_command_says_why(dovecot_oauth2: DovecotServer) -> None:
    imap = account(dovecot_oauth2, password=None,
                   oauth2_token_command="sh -c 'echo refresh token revoked >&2; exit 3'")
    with pytest.raises(ImapAuthError,
                       match="the token command exited with 3: refresh token revoked"):
        read_secret(imap)
    empty = account(dovecot_oauth2, password=None, oauth2_token_command="true")
    with pytest.raises(ImapAuthError, match="printed no token"):
        read_secret(empty)


def test_an_expired_token_is_loud_retried_and_recovers(
        tmp_path: Path, dovecot_oauth2: DovecotServer, token_endpoint: TokenEndpoint) -> None:
    dovecot_oauth2.append(USER, support_mail(subject="väntar", message_id="<waiting@b.se>"))
    token_file = tmp_path / "token"
    token_file.write_text("ya29.expired\n")
    notify_path = tmp_path / "notify.sock"
    receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    receiver.bind(str(notify_path))
    receiver.settimeout(1)
    statuses: list[str] = []

    def status_says(text: str) -> bool:
        with contextlib.suppress(TimeoutError):
            statuses.extend(receiver.recv(65536).decode().splitlines())
        return any(line.startswith("STATUS=") and text in line for line in statuses)

    running = make_daemon(tmp_path, env={"NOTIFY_SOCKET": str(notify_path)})
    (running.cwd / "maild.toml").write_text("\n".join([
        "[[imap]]", 'name = "support"', f'host = "{dovecot_oauth2.host}"',
        f"port = {dovecot_oauth2.port}", 'security = "none"', f'user = "{USER}"',
        f'oauth2_token_file = "{token_file}"', "poll_interval = 1", ""]))
    running.start()
    try:
        wait_until(lambda: len(log_events(running.log(), "imap.auth_failed")) >= 2, timeout=30,
                   what="two refused logins, each logged", log=running.log)
        failures = log_events(running.log(), "imap.auth_failed")
        assert failures[0]["level"] == "error"
        assert "refused the XOAUTH2 login of support@example.se" in str(failures[0]["error"])
        assert [event["failures"] for event in failures[:2]] == [1, 2]
        assert float(str(failures[1]["retry_in"])) > float(str(failures[0]["retry_in"])), \
            "backoff grows"
        wait_until(lambda: status_says("imap support/INBOX: login refused"), timeout=30,
                   what="the refused login in the daemon's status")
        assert running.process is not None and running.process.poll() is None
        assert running.count("inbound") == 0

        token_endpoint.tokens["ya29.renewed"] = USER
        token_file.write_text("ya29.renewed\n")
        wait_until(lambda: running.count("inbound", "message_id = 'waiting@b.se'") == 1,
                   timeout=60, what="the message once the token works again",
                   log=running.log)

        def latest_status_is_clear() -> bool:
            status_says("")
            latest = [line for line in statuses if line.startswith("STATUS=")][-1]
            return "login refused" not in latest
        wait_until(latest_status_is_clear, timeout=30, what="the status without the problem")
    finally:
        assert running.stop() == 0
        receiver.close()
