"""/metrics' counts, read from the database at scrape time, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, select

from maild.models import Outbox, OutboxState, utcnow
from maild.runtime import Runtime
from maild.web.metrics import Metrics, ProcessState

# (attempts, state, history) of outbox items, and the failed attempts each counts.
ITEMS: list[tuple[int, str, Any, int]] = [
    (1, OutboxState.SENT, [{"at": "2026-12-01T10:00:00", "result": "sent"}], 0),
    (3, OutboxState.SENT, [{"result": "deferred", "error": "451 4.7.1 try later"},
                           {"result": "deferred"}, {"result": "sent"}], 2),
    (2, OutboxState.FAILED, [{"result": "failed"}, {"result": "bounced"}], 2),
    # Never attempted: an administrator's requeue in its history is no delivery attempt.
    (0, OutboxState.QUEUED, [{"result": "requeued"}], 0),
    (1, OutboxState.QUEUED, [{"at": "2026-12-01T10:00:00"}], 1),  # no result: not sent
    (1, OutboxState.QUEUED, None, 0),
    (1, OutboxState.QUEUED, [], 0),
]


def _scrape(runtime: Runtime) -> str:
    return Metrics(runtime.engine, ProcessState()).render().decode()


def test_delivery_failures_are_the_attempted_items_unsent_history_entries(
        runtime: Runtime) -> None:
    assert "maild_outbox_delivery_failures_total 0.0" in _scrape(runtime)
    with Session(runtime.engine) as session:
        for number, (attempts, state, history, _) in enumerate(ITEMS):
            session.add(Outbox(purpose="ack", envelope_sender="support@example.se",
                               recipient="anna.lind@bergstromsbygg.se",
                               message_id=f"<metrics-{number}@example.se>", raw=b"",
                               state=state, attempts=attempts, history=history,
                               created_at=utcnow()))
        session.commit()
    expected = sum(failed for *_, failed in ITEMS)
    # The count as the history reads in Python, for the items as stored.
    with Session(runtime.engine) as session:
        stored = session.exec(select(Outbox)).all()
        assert sum(1 for item in stored if item.attempts > 0 for entry in item.history or []
                   if entry.get("result") != "sent") == expected == 5
    assert f"maild_outbox_delivery_failures_total {expected}.0" in _scrape(runtime)
