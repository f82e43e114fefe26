"""What a killed instance held is taken over within its lease: outbox items, without a long wait."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlmodel import Session

from maild.daemon import Daemon
from maild.models import Outbox, utcnow
from maild.respond.outbox import flush_outbox
from maild.runtime import Runtime


def _daemon(runtime: Runtime) -> Daemon:
    async def make() -> Daemon:
        return Daemon(config=runtime.config, live=None,  # type: ignore[arg-type]
                      processor=runtime.processor())
    return asyncio.run(make())


def test_a_pass_reports_when_a_dead_senders_claim_runs_out_and_the_daemon_wakes_then(
        runtime: Runtime) -> None:
    now = utcnow()
    ends = now + timedelta(seconds=7)
    with Session(runtime.engine) as session:
        session.add(Outbox(purpose="ack", envelope_sender="", message_id="held@example.se",
                           recipient="kund@bergstromsbygg.se", raw=b"Subject: x\r\n\r\nx\r\n",
                           created_at=now, state="sending", claim_token="dead", attempts=1,
                           claimed_until=ends))
        session.commit()
    report = flush_outbox(runtime.engine, _NoTransport(), now=now)
    assert report.sent == 0 and report.lease_ends == ends
    daemon = _daemon(runtime)
    assert daemon.config.outbox_interval == 30
    assert daemon.outbox_wait() == 30, "nothing held: the interval"
    daemon.outbox_lease_ends = utcnow() + timedelta(seconds=7)
    assert 6 < daemon.outbox_wait() < 7.5, "the next pass comes when the claim runs out"
    daemon.outbox_lease_ends = utcnow() - timedelta(seconds=3)
    assert daemon.outbox_wait() == 1.0
    daemon.outbox_lease_ends = utcnow() + timedelta(minutes=5)
    assert daemon.outbox_wait() == 30


class _NoTransport:
    def deliver(self, item_id: int, raw: bytes, envelope_sender: str, recipient: str) -> str:
        raise AssertionError("nothing is due")
