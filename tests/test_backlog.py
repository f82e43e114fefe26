"""A backlog does not slow each claim: processing and the outbox claim the oldest waiting
items with work that does not grow with how many wait (after an outage, a bulk ingest).

The work is counted in SQLite's virtual machine instructions (its progress handler),
which, unlike time, is the same on every run.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from sqlalchemy import event, text

from maild.models import utcnow
from maild.respond.lease import claim_due
from maild.runtime import Runtime

STEP = 100  # instructions between two calls of the progress handler


def _numbered(runtime: Runtime, insert: str, count: int, first: int) -> None:
    """Run `insert`, an INSERT ... SELECT ... FROM n, for i in n = first + 1 .. first + count."""
    with runtime.engine.begin() as connection:
        connection.execute(text(
            "WITH RECURSIVE n(i) AS (SELECT :first + 1 UNION ALL SELECT i + 1 FROM n "
            "WHERE i < :first + :count) " + insert), {"count": count, "first": first})


def _wait_inbound(runtime: Runtime, count: int, first: int = 0) -> None:
    _numbered(runtime, "INSERT INTO inbound (received_at, transport, state, idempotency_key, "
              "attempts, duplicates, size, envelope_recipients, raw) SELECT "
              "'2026-12-01 09:00:00.000000', 'smtp', 'received', 'backlog-' || i, 0, 0, 500, "
              "'[]', x'' FROM n", count, first)


def _queue_outbox(runtime: Runtime, count: int, first: int = 0) -> None:
    _numbered(runtime, "INSERT INTO outbox (purpose, envelope_sender, recipient, message_id, "
              "raw, state, attempts, history, created_at) SELECT 'ack', 'support@example.se', "
              "'anna.lind@bergstromsbygg.se', '<backlog-' || i || '@example.se>', x'', "
              "'queued', 0, '[]', '2026-12-01 09:00:00.000000' FROM n", count, first)
    _numbered(runtime, "INSERT INTO outbox_raw (outbox_id, raw) SELECT i, randomblob(2000) "
              "FROM n", count, first)


@contextmanager
def _counted(runtime: Runtime) -> Iterator[list[int]]:
    """The SQLite instructions run on the engine's connections inside the block (in STEPs)."""
    steps = [0]

    def count() -> int:
        steps[0] += 1
        return 0

    def watch(dbapi_connection: sqlite3.Connection, *_: Any) -> None:
        dbapi_connection.set_progress_handler(count, STEP)

    def unwatch(dbapi_connection: sqlite3.Connection, *_: Any) -> None:
        dbapi_connection.set_progress_handler(None, STEP)

    event.listen(runtime.engine, "checkout", watch)
    event.listen(runtime.engine, "checkin", unwatch)
    try:
        yield steps
    finally:
        event.remove(runtime.engine, "checkout", watch)
        event.remove(runtime.engine, "checkin", unwatch)


def _work_of(runtime: Runtime, claim: Callable[[], list[int]]) -> tuple[list[int], int]:
    with _counted(runtime) as steps:
        claimed = claim()
    return claimed, steps[0]


def test_processing_claims_the_oldest_with_the_same_work_behind_20000_waiting(
        sqlite_runtime: Runtime) -> None:
    processor = sqlite_runtime.processor()
    _wait_inbound(sqlite_runtime, 100)
    small_ids, small = _work_of(sqlite_runtime, lambda: processor.claim_batch(size=32))
    _wait_inbound(sqlite_runtime, 20_000, first=100)
    large_ids, large = _work_of(sqlite_runtime, lambda: processor.claim_batch(
        after_id=max(small_ids), size=32))
    assert small_ids == list(range(1, 33))
    assert large_ids == list(range(33, 65))
    # Reading every waiting message to sort them, a claim did 66 times the work here.
    assert large < 2 * small, (small, large)


def test_the_outbox_claims_the_oldest_with_the_same_work_behind_20000_due(
        sqlite_runtime: Runtime) -> None:
    def claim(after_id: int) -> list[int]:
        claims = claim_due(sqlite_runtime.engine, utcnow(), timedelta(minutes=5),
                           after_id=after_id, limit=16)
        return [claim.item_id for claim in claims]

    _queue_outbox(sqlite_runtime, 100)
    small_ids, small = _work_of(sqlite_runtime, lambda: claim(0))
    _queue_outbox(sqlite_runtime, 20_000, first=100)
    large_ids, large = _work_of(sqlite_runtime, lambda: claim(max(small_ids)))
    assert small_ids == list(range(1, 17)) and large_ids == list(range(17, 33))
    # Reading every due item, its bytes too, to sort them, a claim did 156 times the work.
    assert large < 2 * small, (small, large)
