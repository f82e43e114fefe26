"""The breach monitor run by several instances at once: one notice per ticket, cluster-wide."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlmodel import Session, col, func, select

from maild.models import Outbox, Ticket
from maild.runtime import open_runtime
from maild.sla.monitor import run_monitor
from tests.conftest import make_config

NOW = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
TICKETS = 30


def test_monitors_running_at_once_escalate_each_ticket_once(postgres_url: str,
                                                            tmp_path: Path) -> None:
    runtime = open_runtime(make_config(tmp_path, postgres_url))
    with Session(runtime.engine) as session:
        for index in range(TICKETS):
            session.add(Ticket(
                number=f"MD-2026-{index:05d}-0", subject=f"Driftstopp {index}",
                requester=f"it{index}@halsovaxeln.se", customer="halsovaxeln",
                policy="itil-p1-p4", queue="tech", priority="P1", created_at=NOW,
                updated_at=NOW, response_due=NOW + timedelta(hours=1)))
        session.commit()
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def tick() -> None:
        barrier.wait()
        try:
            run_monitor(runtime.engine, runtime.rules, NOW + timedelta(minutes=1), "example.se")
        except BaseException as error:  # collected: a thread's exception would be lost
            errors.append(error)

    threads = [threading.Thread(target=tick) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with Session(runtime.engine) as session:
        per_ticket = session.exec(
            select(Outbox.ticket_id, func.count())
            .where(col(Outbox.purpose) == "escalation")
            .group_by(col(Outbox.ticket_id))).all()
        escalated = session.exec(select(func.count()).select_from(Ticket).where(
            col(Ticket.escalated_at).is_not(None))).one()
    recipients = len(runtime.rules.policies["itil-p1-p4"].escalation)
    assert escalated == TICKETS
    assert len(per_ticket) == TICKETS
    assert {count for _ticket, count in per_ticket} == {recipients}, \
        "each ticket's escalation sent once to each escalation address"
    runtime.engine.dispose()
