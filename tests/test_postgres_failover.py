"""PostgreSQL going away under a running daemon (a failover): DATA answers 451, then 250 again.

The primary's sessions are cut and new ones refused for a while, as while a standby is
promoted; mail arriving then must be answered `451 4.3.0` (the MTA keeps it and retries),
and once the database answers again the same message is stored, once.
"""

from __future__ import annotations

import smtplib
from pathlib import Path

import psycopg
import pytest

from tests.conftest import POSTGRES_ADMIN
from tests.daemon_helpers import make_daemon, wait_until
from tests.mailmaker import support_mail


def _send(port: int, raw: bytes) -> dict[str, tuple[int, bytes]]:
    with smtplib.SMTP("127.0.0.1", port, local_hostname="client.bergstromsbygg.se") as client:
        return client.sendmail("anna.lind@bergstromsbygg.se", ["support@example.se"], raw)


def _accepted(port: int, raw: bytes) -> bool:
    """Whether `raw` is answered 250 (False on a 451: not yet)."""
    try:
        return _send(port, raw) == {}
    except smtplib.SMTPDataError as error:
        if error.smtp_code != 451:
            raise
        return False


def _set_reachable(name: str, reachable: bool) -> None:
    """Let sessions into database `name`, or cut them all and refuse new ones."""
    with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as admin:
        admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS {str(reachable).lower()}')
        if not reachable:
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                          "WHERE datname = %s AND pid <> pg_backend_pid()", (name,))


def _stored(url: str, message_id: str) -> int:
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as connection:
        row = connection.execute("SELECT count(*) FROM inbound WHERE message_id = %s",
                                 (message_id,)).fetchone()
    assert row is not None
    return int(row[0])


def test_mail_during_a_failover_gets_451_and_is_stored_once_on_retry(postgres_url: str,
                                                                    tmp_path: Path) -> None:
    name = postgres_url.rsplit("/", 1)[1]
    daemon = make_daemon(tmp_path, "--no-imap", env={"MAILD_DATABASE_URL": postgres_url})
    daemon.start()
    try:
        assert _send(daemon.smtp_port, support_mail(subject="före")) == {}
        raw = support_mail(subject="under bytet", message_id="<failover@bergstromsbygg.se>")
        _set_reachable(name, False)
        try:
            with pytest.raises(smtplib.SMTPDataError) as error:
                _send(daemon.smtp_port, raw)
            assert error.value.smtp_code == 451
            assert error.value.smtp_error.startswith(b"4.3.0")
            assert daemon.process is not None
            assert daemon.process.poll() is None, "the daemon outlives the database's absence"
        finally:
            _set_reachable(name, True)
        wait_until(lambda: _accepted(daemon.smtp_port, raw), timeout=20,
                   what="250 once the database answers again", log=daemon.log)
        assert _send(daemon.smtp_port, raw) == {}, "a second retry is a duplicate"
        assert _stored(postgres_url, "failover@bergstromsbygg.se") == 1
    finally:
        daemon.stop()
