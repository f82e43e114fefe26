"""One pass in several processes: `maild ingest --workers N`, `maild process --workers N`."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, select

import maild.processing as processing_module
from maild.intake import store_inbound
from maild.models import Inbound, TicketMessage, utcnow
from maild.processing import Processor
from maild.runtime import Runtime
from maild.workers.side_by_side import SideBySide
from tests.conftest import ROOT, MaildCLI
from tests.mailmaker import support_mail
from tests.pipeline_helpers import tickets

FIXTURES = ROOT / "fixtures" / "emails"


def _tickets_of(maild: MaildCLI, data: Path) -> list[tuple[Any, ...]]:
    listed = maild("tickets", "--json", extra_env={"MAILD_DATA_DIR": str(data)})
    assert listed.code == 0, listed.stderr
    return sorted((row["subject"], row["requester"], row["queue"], row["priority"],
                   row["status"]) for row in json.loads(listed.stdout)["tickets"])


def test_ingest_in_two_processes_writes_what_one_process_writes(
        maild: MaildCLI, tmp_path: Path) -> None:
    """The fixtures hold threads (replies and their originals): side by side, every reply
    still joins its ticket, and the summary counts every process's messages."""
    one, two = tmp_path / "one", tmp_path / "two"
    alone = maild("ingest", str(FIXTURES), extra_env={"MAILD_DATA_DIR": str(one)})
    together = maild("--verbose", "ingest", "--workers", "2", str(FIXTURES),
                     extra_env={"MAILD_DATA_DIR": str(two)})
    assert alone.code == together.code == 0, together.stderr
    assert "processed 59," in together.stdout and "followup 12" in together.stdout
    summary = [line for line in together.stdout.splitlines() if line.startswith("stored")]
    assert summary == alone.stdout.splitlines()
    assert _tickets_of(maild, two) == _tickets_of(maild, one)
    logged = [json.loads(line) for line in together.stdout.splitlines() + together.stderr.
              splitlines() if line.startswith("{")]
    started = [event for event in logged if event["event"] == "process.side_by_side"]
    assert len(started) == 1 and started[0]["processes"] == 2
    assert len(started[0]["helpers"]) == 1


def test_process_in_two_processes_and_its_usage_errors(maild: MaildCLI) -> None:
    stored = maild("ingest", "--no-process", str(FIXTURES))
    assert stored.code == 0, stored.stderr
    done = maild("process", "--workers", "2")
    assert done.code == 0, done.stderr
    assert done.stdout.startswith("processed 59, quarantined 0, to retry 0")
    assert maild("process", "--workers", "0").code == 2
    wrong = maild("process", "--workers", "two")
    assert wrong.code == 2 and "expected a number of processes, 1 or more: 'two'" in wrong.stderr
    follow = maild("process", "--follow", "--workers", "2")
    assert follow.code == 64 and "processing.workers" in follow.stderr


def _gone(pid: int) -> bool:
    """Whether process `pid` has ended (a zombie no one reaps counts as ended)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    return "\nState:\tZ" in status


def test_ingest_killed_mid_pass_leaves_its_helper_to_stop_cleanly(
        maild: MaildCLI, tmp_path: Path) -> None:
    """kill -9 of `maild ingest --workers 2` while it processes: the helper commits the
    batch in hand, claims no more and stops (no broken pipe); the next pass, once the
    dead process's lease is out, processes the rest, every message once."""
    folder = tmp_path / "mail"
    folder.mkdir()
    for index in range(800):
        (folder / f"{index:05d}.eml").write_bytes(support_mail(
            subject=f"Fel {index}", body=f"Kassan visar fel belopp, ärende {index}.\n",
            message_id=f"<killed-{index}@bergstromsbygg.se>"))
    env = {**maild.env, "MAILD_PROCESSING_LEASE_SECONDS": "2"}
    ingest = subprocess.Popen([sys.executable, "-m", "maild.cli", "--verbose", "ingest",
                               "--workers", "2", str(folder)], cwd=maild.cwd, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert ingest.stdout is not None
    helper = None
    for line in ingest.stdout:
        if '"process.side_by_side"' in line:
            helper = json.loads(line)["helpers"][0]
            break
    assert helper is not None, "the pass in two processes never started"
    database = maild.cwd / "var" / "maild.db"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with sqlite3.connect(database) as connection:
            (done,) = connection.execute(
                "SELECT count(*) FROM inbound WHERE state = 'processed'").fetchone()
        if done >= 64:
            break
        time.sleep(0.05)
    ingest.kill()
    ingest.wait()
    rest = ingest.stdout.read()  # the helper's log, to its end (it holds the pipe)
    assert _gone(helper)
    assert "process.helper_parent_gone" in rest
    assert "Traceback" not in rest and "BrokenPipeError" not in rest
    time.sleep(2.5)  # the killed process's lease runs out
    later = maild("process", extra_env={"MAILD_PROCESSING_LEASE_SECONDS": "2"})
    assert later.code == 0, later.stderr
    with sqlite3.connect(database) as connection:
        assert connection.execute(
            "SELECT state, count(*) FROM inbound GROUP BY state").fetchall() == [
            ("processed", 800)]
        assert connection.execute(
            "SELECT count(*), count(DISTINCT inbound_id) FROM ticket_message "
            "WHERE direction = 'in'").fetchone() == (800, 800)


def test_a_helper_killed_mid_batch_loses_nothing_and_doubles_nothing(
        runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    """A helper dies (SIGKILL) inside its transaction: the pass reports it, the others go
    on, and what it held is processed once its lease runs out; one ticket a message."""
    for index in range(24):
        store_inbound(runtime.engine, support_mail(subject=f"Fel {index}",
                                                   body=f"Fel nummer {index} i kassan.\n"),
                      transport="smtp")
    parent = os.getpid()
    real = Processor._process_one
    done_here = 0

    def dies_in_the_helper(self: Processor, *args: Any, **kwargs: Any) -> Any:
        nonlocal done_here
        if os.getpid() != parent:
            done_here += 1
            if done_here == 6:  # the helper's second batch, mid-way
                os.kill(os.getpid(), signal.SIGKILL)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Processor, "_process_one", dies_in_the_helper)

    def processor() -> Processor:
        made = runtime.processor()
        made.batch_size = 4
        return made

    with SideBySide(runtime.engine, processor, 2) as side_by_side:
        result = side_by_side.run()
    assert len(result.failures) == 1
    assert "was killed by signal 9" in result.failures[0]
    held = 24 - result.counts["processed"]
    assert 1 <= held <= 4, result.counts  # the helper's batch in progress, rolled back
    with Session(runtime.engine) as session:
        waiting = session.exec(select(Inbound).where(Inbound.state == "processing")).all()
    assert len(waiting) == held

    later = runtime.processor()
    later.clock = lambda: utcnow() + timedelta(minutes=10)  # the dead helper's lease is out
    assert later.run_pending()["processed"] == held
    assert len(tickets(runtime)) == 24
    with Session(runtime.engine) as session:
        incoming = session.exec(select(TicketMessage).where(
            TicketMessage.direction == "in")).all()
    assert sorted(row.inbound_id for row in incoming) == list(range(1, 25))


def test_helpers_never_started_are_let_go(sqlite_runtime: Runtime) -> None:
    """`maild ingest` forks before it stores; with nothing stored, the helpers go without
    a pass, and leave no process behind."""
    with SideBySide(sqlite_runtime.engine, sqlite_runtime.processor, 3) as side_by_side:
        pids = [helper.pid for helper in side_by_side._helpers]
    assert len(pids) == 2
    for pid in pids:
        with pytest.raises(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)


def test_side_by_side_is_a_real_pass_of_every_process(
        runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    """Both processes do part of the pass (the counts add up from both)."""
    for index in range(40):
        store_inbound(runtime.engine, support_mail(subject=f"Fråga {index}",
                                                   body=f"Fråga nummer {index}.\n"),
                      transport="smtp")

    def processor() -> Processor:
        made = runtime.processor()
        made.batch_size = 4
        return made

    here: list[int] = []
    monkeypatch.setattr(processing_module.Processor, "run_pending", _counting(here))
    with SideBySide(runtime.engine, processor, 2) as side_by_side:
        result = side_by_side.run()
    assert result.counts["processed"] == 40 and not result.failures
    assert 0 < here[0] < 40, "the helper processed the rest"
    assert len(tickets(runtime)) == 40


def _counting(into: list[int]) -> Any:
    real = Processor.run_pending
    parent = os.getpid()

    def run_pending(self: Processor, *args: Any, **kwargs: Any) -> Any:
        counts = real(self, *args, **kwargs)
        if os.getpid() == parent:
            into.append(counts["processed"])
        return counts

    return run_pending
