"""Chaos: three maild instances on one PostgreSQL, one killed with SIGKILL every few seconds.

Mail arrives over SMTP at random instances and by IMAP from one Dovecot mailbox
that all three poll; outbound mail goes to a recording relay. At the end every
message answered 250 is stored exactly once, every IMAP message too, no message
made two tickets, no outbox item reached the relay twice, every item recorded
as sent reached it (but for SMTP's last window, below), and nothing is left
claimed. The sizes are bounded so the suite stays at about two
minutes (300 over SMTP, 60 by IMAP, kills for at least 40 s, so also while the
mail is being processed and delivered); MAILD_CHAOS_SMTP=2000
MAILD_CHAOS_IMAP=300 runs the full version. The counts are printed (`pytest -s`). It needs
PostgreSQL and Dovecot, and is skipped without them unless
MAILD_REQUIRE_SERVICES=1.

The instances run with the default leases (processing 30 s, renewed while
they live; outbox 25 s; IMAP 10 s), so what a killed instance held is taken
over as it would be in production. One outbox outcome cannot be told apart
from the outside: a sender killed in the microseconds between its mark and
the final dot leaves an item recorded as sent that the relay never got (the
price of never sending twice, see `maild.respond.lease`); the test would
report it as an item sent but not delivered.
"""

from __future__ import annotations

import collections
import os
import random
import smtplib
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tests.daemon_helpers import RunningMaild, listening, make_daemon, wait_until
from tests.dovecot import USERS, DovecotServer
from tests.mailmaker import support_mail
from tests.sink import RecordingSink

USER = "support@example.se"
SMTP_MESSAGES = int(os.environ.get("MAILD_CHAOS_SMTP", "300"))
IMAP_MESSAGES = int(os.environ.get("MAILD_CHAOS_IMAP", "60"))
KILL_EVERY = (2.0, 5.0)   # seconds between two kills, drawn at random
CHAOS_SECONDS = float(os.environ.get("MAILD_CHAOS_SECONDS", "40"))  # kills go on at least this long
SENDERS = 4               # concurrent SMTP clients


def _instance(tmp_path: Path, name: str, postgres_url: str, dovecot: DovecotServer,
              sink_port: int) -> RunningMaild:
    (tmp_path / name).mkdir()
    running = make_daemon(tmp_path / name, env={
        "MAILD_DATABASE_URL": postgres_url,
        "MAILD_OUTBOX_TRANSPORT": "smtp",
        "MAILD_OUTBOX_RELAY_HOST": "127.0.0.1",
        "MAILD_OUTBOX_RELAY_PORT": str(sink_port),
        "MAILD_OUTBOX_RELAY_SECURITY": "none",
        "MAILD_DAEMON_OUTBOX_INTERVAL": "1",
        "MAILD_LOG_LEVEL": os.environ.get("MAILD_CHAOS_LOG_LEVEL", "warning"),
    })
    (running.cwd / "maild.toml").write_text("\n".join([
        "[[imap]]", 'name = "support"', f'host = "{dovecot.host}"', f"port = {dovecot.port}",
        'security = "none"', f'user = "{USER}"', f'password = "{USERS[USER]}"',
        'after = "delete"', "poll_interval = 1", "batch_size = 20", ""]))
    return running


def _spawn(running: RunningMaild) -> None:
    """Start `running` again without waiting for it to listen."""
    with running.log_path.open("ab") as log:
        running.process = subprocess.Popen([sys.executable, "-m", "maild.cli", *running.args],
                                           cwd=running.cwd, env=running.env,
                                           stdout=log, stderr=log)


def _message(kind: str, index: int) -> bytes:
    return support_mail(
        sender=f"Kund {index} <kund.{kind}.{index}@bergstromsbygg.se>",
        subject=f"Ärende {kind} {index}",
        body=f"Hej!\n\nVi har problem nummer {kind}-{index} med bokningen sedan i morse.\n\n"
             f"Med vänliga hälsningar\nKund {index}\n",
        message_id=f"<{kind}-{index}@chaos.test>")


@pytest.mark.slow
def test_three_instances_under_kill_9_keep_every_promise(
        tmp_path: Path, postgres_url: str, dovecot: DovecotServer,
        sink: tuple[RecordingSink, int]) -> None:
    recorder, sink_port = sink
    instances = [_instance(tmp_path, f"i{n}", postgres_url, dovecot, sink_port)
                 for n in range(3)]
    engine = create_engine(postgres_url)
    lock = threading.Lock()
    accepted: collections.Counter[str] = collections.Counter()
    refused = collections.Counter[str]()
    kills = 0
    done_sending = threading.Event()
    aborted = threading.Event()

    def send_all(indexes: range) -> None:
        for index in indexes:
            raw = _message("smtp", index)
            while True:
                running = random.choice(instances)
                try:
                    with smtplib.SMTP("127.0.0.1", running.smtp_port, timeout=30) as client:
                        client.sendmail(f"kund.smtp.{index}@bergstromsbygg.se", [USER], raw)
                except (OSError, smtplib.SMTPException) as error:
                    with lock:
                        refused[type(error).__name__] += 1
                    time.sleep(0.05)
                    continue
                with lock:
                    accepted[f"smtp-{index}@chaos.test"] += 1
                break

    def append_all() -> None:
        for index in range(IMAP_MESSAGES):
            dovecot.append(USER, _message("imap", index))
            time.sleep(0.01)

    def kill_now_and_then() -> None:
        nonlocal kills
        while not aborted.wait(random.uniform(*KILL_EVERY)):
            if done_sending.is_set() and time.monotonic() - started >= CHAOS_SECONDS:
                return  # the last kills hit processing and delivery, not intake
            victim = random.choice(instances)
            victim.kill()
            kills += 1
            _spawn(victim)  # not waited for: the clients meanwhile use the others

    try:
        for running in instances:
            running.start()
        per = -(-SMTP_MESSAGES // SENDERS)
        workers = [threading.Thread(target=send_all,
                                    args=(range(n * per, min(SMTP_MESSAGES, (n + 1) * per)),))
                   for n in range(SENDERS)]
        workers.append(threading.Thread(target=append_all))
        killer = threading.Thread(target=kill_now_and_then)
        started = time.monotonic()
        for thread in [*workers, killer]:
            thread.start()
        for thread in workers:
            thread.join()
        done_sending.set()
        sending_took = time.monotonic() - started
        killer.join()
        chaos_took = time.monotonic() - started
        for running in instances:
            wait_until(lambda running=running: listening(running.smtp_port), timeout=120,
                       what="every instance up again", log=running.log)

        def count(sql: str) -> int:
            with engine.connect() as connection:
                return int(connection.execute(text(sql)).scalar_one())

        def settled() -> bool:
            return (count("SELECT count(*) FROM inbound") >= SMTP_MESSAGES + IMAP_MESSAGES
                    and count("SELECT count(*) FROM inbound WHERE state IN "
                              "('received', 'processing')") == 0
                    and count("SELECT count(*) FROM outbox WHERE state NOT IN "
                              "('sent', 'failed', 'bounced', 'cancelled')") == 0
                    and len(dovecot.messages(USER)) == 0)

        def where_it_stands() -> str:
            with engine.connect() as connection:
                inbound = {row[0]: row[1] for row in connection.execute(text(
                    "SELECT state, count(*) FROM inbound GROUP BY state"))}
                outbox = {row[0]: row[1] for row in connection.execute(text(
                    "SELECT state, count(*) FROM outbox GROUP BY state"))}
                leases = connection.execute(text(
                    "SELECT name, holder, expires_at FROM lease")).all()
            tails = "\n".join(f"{running.cwd.parent.name}: alive="
                              f"{running.process is not None and running.process.poll() is None}"
                              f"\n" + "\n".join(running.log().splitlines()[-5:])
                              for running in instances)
            return (f"{tails}\ninbound {inbound}, outbox {outbox}, still in the mailbox "
                    f"{len(dovecot.messages(USER))}, leases {leases}, now {time.time()}")

        wait_until(settled, timeout=300, what="every message processed and every item sent",
                   log=where_it_stands)
        with engine.connect() as connection:
            stored = collections.Counter(row[0] for row in connection.execute(text(
                "SELECT message_id FROM inbound")))
            tickets = count("SELECT count(*) FROM ticket")
            numbers = count("SELECT count(DISTINCT number) FROM ticket")
            items = {row[0]: row[1] for row in connection.execute(text(
                "SELECT message_id, state FROM outbox"))}
            quarantined = count("SELECT count(*) FROM inbound WHERE state = 'quarantined'")
            still_claimed = (count("SELECT count(*) FROM inbound WHERE claimed_until IS NOT NULL")
                             + count("SELECT count(*) FROM outbox WHERE claim_token IS NOT NULL "
                                     "OR claimed_until IS NOT NULL OR committing_at IS NOT NULL"))
            rows = connection.execute(text("SELECT message_id, history FROM outbox")).all()
            histories = [row[1] or [] for row in rows]
            assumed_ids = {str(row[0]).strip("<>") for row in rows if any(
                entry.get("result") == "assumed sent" for entry in row[1] or [])}
        taken_over = sum(any(entry.get("result") == "taken over" for entry in history)
                         for history in histories)
        assumed = sum(any(entry.get("result") == "assumed sent" for entry in history)
                      for history in histories)
        delivered = collections.Counter(
            str(delivery.message["Message-ID"]).strip("<>") for delivery in recorder.deliveries)

        expected = {f"smtp-{n}@chaos.test" for n in range(SMTP_MESSAGES)} | {
            f"imap-{n}@chaos.test" for n in range(IMAP_MESSAGES)}
        sent = {message_id.strip("<>") for message_id, state in items.items()
                if state == "sent"}
        print(f"\nchaos: {SMTP_MESSAGES} over SMTP ({sum(accepted.values())} answers 250, "
              f"{sum(refused.values())} refused or cut off: {dict(refused)}), "
              f"{IMAP_MESSAGES} by IMAP in {sending_took:.0f} s, {kills} kills in "
              f"{chaos_took:.0f} s; "
              f"stored {len(stored)}, tickets {tickets}, quarantined {quarantined}, "
              f"outbox {len(items)} items ({len(sent)} sent, {taken_over} taken over, "
              f"{assumed} assumed sent), "
              f"relay got {sum(delivered.values())} ({len(delivered)} distinct)")
        assert set(accepted) == {f"smtp-{n}@chaos.test" for n in range(SMTP_MESSAGES)}
        assert set(stored) == expected, "every message stored"
        assert all(times == 1 for times in stored.values()), "stored exactly once"
        assert tickets == numbers == len(expected), "one ticket per message, none twice"
        assert quarantined == 0
        assert still_claimed == 0, "nothing left claimed"
        # SMTP's last window (RFC 1047): a sender killed after committing its mark and before
        # its final dot reached the relay leaves an item "assumed sent" that the relay never
        # took. maild chooses that (a lost acknowledgement, logged as outbox.assumed_sent)
        # over sending twice; only such an item may be missing.
        lost = sent - set(delivered)
        print(f"chaos: {len(lost)} assumed-sent item(s) the relay never took: {sorted(lost)}")
        assert lost <= assumed_ids, "every item recorded as sent, and not assumed, was relayed"
        assert len(lost) <= 2, "the window between the mark and the dot is a few milliseconds"
        assert set(delivered) <= sent, "nothing reached the relay that is not recorded as sent"
        duplicates = {key: times for key, times in delivered.items() if times > 1}
        assert duplicates == {}, "and exactly once"
    finally:
        aborted.set()
        for running in instances:
            if running.process is not None and running.process.poll() is None:
                running.stop(timeout=60)
        engine.dispose()
