"""Acknowledgement limits and the same-text rule are exact with several processes on one database.

Each limit is counted from the outbox and then an acknowledgement is queued; without
a lock around the two, workers that count at once each send the one that breaks the
limit. These tests run real OS processes against one database (PostgreSQL, and SQLite
for `maild process` beside a running daemon).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlmodel import Session, col, select

from maild.intake import store_inbound
from maild.models import Inbound, InboundState, Outbox, TicketCounter
from maild.respond.accounting import AccountingBusy, hold_ack_accounting
from maild.runtime import open_runtime
from tests.conftest import ROOT, make_config
from tests.mailmaker import support_mail

WORKERS = 3
PER_SENDER = 12
# 16 senders a round: every claimed batch of 32 starts with the same senders, so the workers
# decide on one sender's mails at the same moments.
LIMITED = [f"kund{index}@foretag{index}.example" for index in range(12)]
REPEATING = [f"upprepar{index}@byra{index}.example" for index in range(4)]

_WORKER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from maild.log import configure_logging
    from maild.runtime import open_runtime
    from tests.conftest import make_config

    configure_logging("warning", "json")
    url, tmp, go = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    # Small batches, so that the workers take turns (a batch holds accounting to its end).
    runtime = open_runtime(make_config(tmp, url, **{"processing.batch_size": 2}))
    processor = runtime.processor()
    while not go.exists():
        time.sleep(0.005)
    total = 0
    while True:
        counts = processor.run_pending()
        total += counts["processed"]
        if not counts:
            break
    print(total)
""")


def _store_mails(url: str, tmp: Path) -> int:
    """Store the interleaved mails of every sender; the number stored."""
    runtime = open_runtime(make_config(tmp, url))
    stored = 0
    for index in range(PER_SENDER):
        for sender in LIMITED:
            store_inbound(runtime.engine, support_mail(
                sender=sender, subject=f"Fråga {index}", authenticated=False,
                body=f"Vi har problem nummer {index} med tjänsten.\n"), transport="smtp")
            stored += 1
        for sender in REPEATING:
            store_inbound(runtime.engine, support_mail(
                sender=sender, subject=f"Påminnelse {index}", authenticated=False,
                body="Samma text varje gång: tjänsten svarar inte.\n"), transport="smtp")
            stored += 1
    runtime.engine.dispose()
    return stored


def test_workers_in_several_processes_send_exactly_the_limit_and_one_ack_per_text(
        database_url: str, tmp_path: Path) -> None:
    stored = _store_mails(database_url, tmp_path)
    go = tmp_path / "go"
    workers = [subprocess.Popen([sys.executable, "-c", _WORKER, database_url, str(tmp_path),
                                 str(go)], cwd=ROOT,
                                env={**os.environ, "PYTHONPATH": str(ROOT),
                                     "MAILD_LOG_LEVEL": "warning"},
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
               for _ in range(WORKERS)]
    time.sleep(3)  # every worker has imported maild and opened the database
    go.touch()
    processed = []
    for worker in workers:
        out, err = worker.communicate(timeout=300)
        assert worker.returncode == 0, err.decode()[-3000:]
        processed.append(int(out.decode().strip()))
    assert sum(processed) == stored
    if database_url.startswith("postgresql"):
        # SQLite gives its write lock to no one in particular: one process may take every
        # batch, and there the counts are exact by construction. PostgreSQL runs them together.
        assert sum(1 for count in processed if count) >= 2, f"workers ran together: {processed}"

    runtime = open_runtime(make_config(tmp_path, database_url))
    limit = runtime.config.ack_max_per_hour
    with Session(runtime.engine) as session:
        states = Counter(session.exec(select(col(Inbound.state))).all())
        acks = Counter(session.exec(select(col(Outbox.recipient))
                                    .where(col(Outbox.purpose) == "ack")).all())
    runtime.engine.dispose()
    assert states == {InboundState.PROCESSED: stored}
    print(f"processed per worker {processed}; acknowledgements {dict(acks)}")
    assert {sender: acks[sender] for sender in LIMITED} == dict.fromkeys(LIMITED, limit)
    assert {sender: acks[sender] for sender in REPEATING} == dict.fromkeys(REPEATING, 1)


def test_a_transaction_that_has_written_never_waits_for_accounting(postgres_url: str,
                                                                   tmp_path: Path) -> None:
    """Waiting after a write could deadlock against the holder; it is refused instead."""
    runtime = open_runtime(make_config(tmp_path, postgres_url))
    with Session(runtime.engine) as holder, Session(runtime.engine) as other:
        hold_ack_accounting(holder)
        other.add(TicketCounter(scope="accounting-test", last=0))
        other.flush()
        with pytest.raises(AccountingBusy):
            hold_ack_accounting(other)
        other.rollback()
        holder.commit()
        other.add(TicketCounter(scope="accounting-test", last=0))
        other.flush()
        hold_ack_accounting(other)  # free again: taken at once
        other.commit()
    runtime.engine.dispose()
