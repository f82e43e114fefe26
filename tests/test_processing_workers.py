"""Processing in worker processes of the daemon (`processing.workers`), on SQLite and PostgreSQL.

Mail taken over SMTP is processed by the worker processes, whose passes wake the
daemon's outbox; a worker killed with SIGKILL is restarted and its batch is taken
over once its lease runs out; the workers stop with the daemon, and stop by
themselves when the daemon is killed.
"""

from __future__ import annotations

import os
import signal
import smtplib
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from maild.write_turns import WriteTurns
from tests.conftest import ROOT
from tests.daemon_helpers import RunningMaild, make_daemon, wait_until
from tests.mailmaker import support_mail
from tests.sink import RecordingSink


def _send(port: int, first: int, count: int) -> None:
    with smtplib.SMTP("127.0.0.1", port, local_hostname="client.test") as client:
        for index in range(first, first + count):
            client.sendmail("kund@halsovaxeln.se", ["support@example.se"], support_mail(
                sender=f"Kund {index} <kund{index}@halsovaxeln.se>", subject=f"Fel {index}",
                body=f"Hej! Fel nummer {index} syns på webbplatsen.\n"))


def _children(pid: int) -> set[int]:
    done = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True,
                          check=False)
    return {int(line) for line in done.stdout.split()}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for our purposes.
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        return stat.read().split(")")[-1].split()[0] != "Z"


def _count(daemon: RunningMaild, url: str, sql: str) -> int:
    if url.startswith("sqlite"):
        return int(daemon.query(sql)[0][0])
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1)
                           if url.startswith("postgresql://") else url)
    try:
        with engine.connect() as connection:
            return int(connection.execute(text(sql)).scalar_one())
    finally:
        engine.dispose()


def _daemon(tmp_path: Path, url: str, relay_port: int) -> RunningMaild:
    env = {"MAILD_PROCESSING_WORKERS": "2", "MAILD_PROCESSING_LEASE_SECONDS": "3",
           "MAILD_OUTBOX_TRANSPORT": "smtp", "MAILD_OUTBOX_RELAY_HOST": "127.0.0.1",
           "MAILD_OUTBOX_RELAY_PORT": str(relay_port), "MAILD_OUTBOX_RELAY_SECURITY": "none",
           "MAILD_DAEMON_OUTBOX_INTERVAL": "60", "MAILD_ACK_MAX_PER_HOUR": "1000",
           "MAILD_ACK_MAX_PER_DAY": "1000"}
    if not url.startswith("sqlite"):
        env["MAILD_DATABASE_URL"] = url
    return make_daemon(tmp_path, env=env)


def test_worker_processes_process_wake_the_outbox_and_survive_sigkill(
        tmp_path: Path, database_url: str, sink: tuple[RecordingSink, int]) -> None:
    recorder, relay_port = sink
    daemon = _daemon(tmp_path, database_url, relay_port)
    daemon.start()
    assert daemon.process is not None
    try:
        wait_until(lambda: len(daemon.events("worker.running")) == 2, timeout=30,
                   what="two worker processes", log=daemon.log)
        workers = {int(event["pid"]) for event in daemon.events("worker.running")}
        assert workers <= _children(daemon.process.pid)
        _send(daemon.smtp_port, 0, 30)
        processed = "SELECT count(*) FROM inbound WHERE state = 'processed'"
        wait_until(lambda: _count(daemon, database_url, processed) == 30, timeout=90,
                   what="every message processed by the workers", log=daemon.log)
        # The outbox interval is a minute: only a worker's report can have woken it.
        wait_until(lambda: len({d.message["X-Maild-Ticket"] for d in recorder.deliveries
                                if d.message["Auto-Submitted"] == "auto-replied"}) == 30,
                   timeout=60, what="every acknowledgement sent at once", log=daemon.log)
        assert not any(event for event in daemon.events("inbound.processed")
                       if event.get("component") == "maild.daemon")

        victim = min(workers)
        os.kill(victim, signal.SIGKILL)
        wait_until(lambda: len(daemon.events("worker.running")) == 3, timeout=30,
                   what="the killed worker restarted", log=daemon.log)
        [died] = daemon.events("worker.died")
        assert died["pid"] == victim and died["code"] == -signal.SIGKILL
        _send(daemon.smtp_port, 30, 20)
        wait_until(lambda: _count(daemon, database_url, processed) == 50, timeout=90,
                   what="processing goes on after the kill", log=daemon.log)
        workers = {int(event["pid"]) for event in daemon.events("worker.running")[-2:]}
    finally:
        assert daemon.stop() == 0
    assert not any(_alive(pid) for pid in workers), "the workers stopped with the daemon"
    tickets = _count(daemon, database_url, "SELECT count(*) FROM ticket")
    assert tickets == 50, "one ticket a message, none twice"
    per_ticket = Counter(d.message["X-Maild-Ticket"] for d in recorder.deliveries
                         if d.message["Auto-Submitted"] == "auto-replied")
    assert max(per_ticket.values()) == 1


def test_workers_stop_by_themselves_when_the_daemon_is_killed(
        tmp_path: Path, sink: tuple[RecordingSink, int]) -> None:
    daemon = _daemon(tmp_path, "sqlite://", sink[1])
    daemon.start()
    assert daemon.process is not None
    wait_until(lambda: len(daemon.events("worker.running")) == 2, timeout=30,
               what="two worker processes", log=daemon.log)
    workers = {int(event["pid"]) for event in daemon.events("worker.running")}
    daemon.kill()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and any(_alive(pid) for pid in workers):
        time.sleep(0.1)
    orphans = [pid for pid in workers if _alive(pid)]
    for pid in orphans:
        os.kill(pid, signal.SIGKILL)
    assert not orphans, "a worker outlived its killed daemon"


_HOLDER = """
import sys, time
from pathlib import Path
from maild.write_turns import WriteTurns
turns = WriteTurns(database=Path(sys.argv[1]))
with turns.turn():
    print("holding", flush=True)
    deadline = time.monotonic() + 20
    while not turns.wanted() and time.monotonic() < deadline:
        time.sleep(0.001)
    print("wanted" if turns.wanted() else "never wanted", flush=True)
"""


def test_a_writer_in_another_process_sees_intake_waiting_and_lets_it_in(tmp_path: Path) -> None:
    database = tmp_path / "maild.db"
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, str(database)],
                              stdout=subprocess.PIPE, text=True, cwd=ROOT,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert holder.stdout is not None
    assert holder.stdout.readline().strip() == "holding"
    turns = WriteTurns(database=database)
    assert not turns.wanted()
    started = time.monotonic()
    with turns.turn(urgent=True):
        waited = time.monotonic() - started
        assert holder.stdout.readline().strip() == "wanted"
    holder.wait(10)
    assert waited < 5, "intake got the turn as soon as the other process let go"


@pytest.mark.parametrize("url", ["sqlite://"])
def test_an_in_memory_database_takes_turns_within_the_process_only(url: str) -> None:
    engine = create_engine(url)
    from maild.write_turns import write_turns
    turns = write_turns(engine)
    with turns.turn(urgent=True), turns.turn():
        assert not turns.wanted()
