"""Several maild instances on one PostgreSQL database and one mailbox: one polls, one stands by.

Exactly one instance polls a folder at a time (the holder of its lease); when
it is killed, another takes over once the lease expires, and every message is
stored exactly once however the leadership changes.
"""

from __future__ import annotations

import time
from pathlib import Path

from sqlalchemy import create_engine, text

from tests.daemon_helpers import RunningMaild, make_daemon, wait_until
from tests.dovecot import USERS, DovecotServer
from tests.mailmaker import support_mail

USER = "support@example.se"


def _instance(tmp_path: Path, name: str, postgres_url: str,
              dovecot: DovecotServer) -> RunningMaild:
    (tmp_path / name).mkdir()
    running = make_daemon(tmp_path / name, env={"MAILD_DATABASE_URL": postgres_url})
    (running.cwd / "maild.toml").write_text("\n".join([
        "[[imap]]", 'name = "support"', f'host = "{dovecot.host}"', f"port = {dovecot.port}",
        'security = "none"', f'user = "{USER}"', f'password = "{USERS[USER]}"',
        "poll_interval = 1", ""]))
    return running


def test_one_instance_polls_and_another_takes_over_when_it_is_killed(
        tmp_path: Path, postgres_url: str, dovecot: DovecotServer) -> None:
    engine = create_engine(postgres_url)

    def stored_ids() -> list[str]:
        with engine.connect() as connection:
            return [row[0] for row in connection.execute(text(
                "SELECT message_id FROM inbound ORDER BY id"))]

    instances = [_instance(tmp_path, name, postgres_url, dovecot) for name in ("a", "b")]
    try:
        for running in instances:
            running.start()
        wait_until(lambda: sum(bool(r.events("imap.leading")) for r in instances) == 1
                   and sum(bool(r.events("imap.standing_by")) for r in instances) == 1,
                   timeout=30, what="one instance leading, the other standing by")
        leader, standby = sorted(instances, key=lambda r: not r.events("imap.leading"))
        for index in range(5):
            dovecot.append(USER, support_mail(subject=f"första {index}",
                                              message_id=f"<first-{index}@b.se>"))
        wait_until(lambda: len(stored_ids()) == 5, timeout=30, what="five messages stored")
        assert standby.events("imap.stored") == [], "the standby instance never polled"

        leader.kill()
        killed = time.monotonic()
        for index in range(3):
            dovecot.append(USER, support_mail(subject=f"andra {index}",
                                              message_id=f"<second-{index}@b.se>"))
        wait_until(lambda: bool(standby.events("imap.leading")), timeout=30,
                   what="the standby instance to take the folder over", log=standby.log)
        took_over = time.monotonic() - killed
        wait_until(lambda: len(stored_ids()) == 8, timeout=30, what="all eight stored",
                   log=standby.log)
        ids = stored_ids()
        assert len(set(ids)) == len(ids) == 8, "every message stored exactly once"
        print(f"takeover after kill -9: {took_over:.1f} s")
        assert took_over <= 15, f"the folder was taken over only after {took_over:.1f} s"
        assert all("\\Seen" in message.flags for message in dovecot.messages(USER))
    finally:
        for running in instances:
            if running.process is not None and running.process.poll() is None:
                running.stop()
        engine.dispose()


def test_a_clean_stop_hands_the_folder_over_at_once(
        tmp_path: Path, postgres_url: str, dovecot: DovecotServer) -> None:
    instances = [_instance(tmp_path, name, postgres_url, dovecot) for name in ("a", "b")]
    try:
        for running in instances:
            running.start()
        wait_until(lambda: sum(bool(r.events("imap.leading")) for r in instances) == 1,
                   timeout=30, what="one instance leading")
        leader, standby = sorted(instances, key=lambda r: not r.events("imap.leading"))
        wait_until(lambda: bool(standby.events("imap.standing_by")), timeout=30)
        assert leader.stop() == 0
        stopped = time.monotonic()
        wait_until(lambda: bool(standby.events("imap.leading")), timeout=30,
                   what="the other instance leading after a clean stop")
        print(f"handover after a clean stop: {time.monotonic() - stopped:.1f} s")
        [standing] = standby.events("imap.standing_by")[:1]
        [leading] = standby.events("imap.leading")[:1]
        assert str(leading["timestamp"]) > str(standing["timestamp"])
    finally:
        for running in instances:
            if running.process is not None and running.process.poll() is None:
                running.stop()
