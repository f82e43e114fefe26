"""A sender killed with SIGKILL mid-delivery: sent again only if the relay cannot have it.

The SMTP sender commits a mark just before the final "." of DATA. A sender
killed after that mark leaves an item the relay (most likely) took: the sender
taking it over records it as sent without sending it again. A sender killed
before the mark leaves an item the relay never finished receiving: it is sent
again, exactly once.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

from sqlmodel import Session, select

from maild.config import RelaySettings
from maild.models import Outbox, utcnow
from maild.respond.outbox import flush_outbox
from maild.respond.outbox_actions import cancel_item, retry_item
from maild.respond.relay import SmtpRelayTransport
from maild.runtime import open_runtime
from tests.conftest import ROOT, make_config
from tests.daemon_helpers import wait_until
from tests.sink import Delivery, RecordingSink, running_sink

LEASE = timedelta(seconds=30)

_SENDER = textwrap.dedent("""
    import sys
    from datetime import timedelta
    from maild.config import RelaySettings
    from maild.db import open_database
    from maild.log import configure_logging
    from maild.respond.outbox import flush_outbox
    from maild.respond.relay import SmtpRelayTransport

    configure_logging("warning", "json")
    engine = open_database(sys.argv[1])
    transport = SmtpRelayTransport(RelaySettings(host="127.0.0.1", port=int(sys.argv[2]),
                                                 security="none"))
    flush_outbox(engine, transport, lease=timedelta(seconds=30))
""")


class PausingSink(RecordingSink):
    """A recording sink that can hold a client in RCPT, before any DATA."""

    rcpt_pause: float = 0.0
    answer_pause: float = 0.0
    rcpt_seen: int = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        """Queue the message (as a relay does at the final dot), then take time to answer."""
        self.deliveries.append(Delivery(envelope.mail_from, list(envelope.rcpt_tos),
                                        envelope.original_content))
        await asyncio.sleep(self.answer_pause)
        return "250 2.0.0 OK queued"

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          rcpt_options: list[str]) -> str:
        self.rcpt_seen += 1
        if self.rcpt_pause:
            await asyncio.sleep(self.rcpt_pause)
        envelope.rcpt_tos.append(address)
        return "250 OK"


def _queue_one(url: str, tmp_path: Path) -> int:
    runtime = open_runtime(make_config(tmp_path, url))
    with Session(runtime.engine) as session:
        item = Outbox(purpose="ack", envelope_sender="", message_id="dot-1@example.se",
                      recipient="kund1@bergstromsbygg.se", created_at=utcnow(),
                      raw=(b"From: support@example.se\r\nTo: kund1@bergstromsbygg.se\r\n"
                           b"Subject: dot\r\nMessage-ID: <dot-1@example.se>\r\n\r\n"
                           b"Hej\r\n.a line that starts with a dot\r\n"))
        session.add(item)
        session.commit()
        assert item.id is not None
        item_id = item.id
    runtime.engine.dispose()
    return item_id


def _item(url: str, tmp_path: Path, item_id: int) -> Outbox:
    runtime = open_runtime(make_config(tmp_path, url))
    try:
        with Session(runtime.engine) as session:
            item = session.exec(select(Outbox).where(Outbox.id == item_id)).one()
            session.expunge(item)
            return item
    finally:
        runtime.engine.dispose()


def _sender(url: str, port: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", _SENDER, url, str(port)], cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _take_over(url: str, tmp_path: Path, port: int) -> int:
    """One pass of a second sender once the dead sender's lease has run out; items sent."""
    runtime = open_runtime(make_config(tmp_path, url))
    try:
        transport = SmtpRelayTransport(RelaySettings(host="127.0.0.1", port=port,
                                                     security="none"))
        report = flush_outbox(runtime.engine, transport, lease=LEASE,
                              now=utcnow() + LEASE + timedelta(seconds=1))
        return report.sent
    finally:
        runtime.engine.dispose()


def _delivered(recorder: RecordingSink) -> Counter[str]:
    return Counter(str(d.message["Message-ID"]).strip("<>") for d in recorder.deliveries)


def test_a_sender_killed_after_its_mark_before_the_dot_is_answered_is_not_sent_again(
        database_url: str, tmp_path: Path) -> None:
    with running_sink(PausingSink()) as (sink, port):
        recorder = cast(PausingSink, sink)
        recorder.answer_pause = 30.0  # the relay has the message but answers the dot late
        item_id = _queue_one(database_url, tmp_path)
        sender = _sender(database_url, port)
        try:
            wait_until(lambda: len(recorder.deliveries) == 1, timeout=60,
                       what="the final dot at the relay")
        finally:
            sender.kill()
            sender.wait()
        marked = _item(database_url, tmp_path, item_id)
        assert (marked.state, marked.attempts) == ("sending", 1)
        assert marked.committing_at is not None
        recorder.answer_pause = 0.0
        assert _take_over(database_url, tmp_path, port) == 1
        time.sleep(0.5)
        assert _delivered(recorder) == Counter({"dot-1@example.se": 1})
        assert b"\r\n..a line that starts with a dot" not in recorder.deliveries[0].raw
        assert b"\r\n.a line that starts with a dot" in recorder.deliveries[0].raw
    done = _item(database_url, tmp_path, item_id)
    assert (done.state, done.attempts, done.claim_token, done.committing_at) == (
        "sent", 1, None, None)
    assert [entry["result"] for entry in done.history] == ["taken over", "assumed sent"]
    assert "not sent again" in done.history[-1]["detail"]


def test_a_sender_killed_before_its_mark_leaves_an_item_sent_again_exactly_once(
        database_url: str, tmp_path: Path) -> None:
    with running_sink(PausingSink()) as (sink, port):
        recorder = cast(PausingSink, sink)
        recorder.rcpt_pause = 30.0  # the first sender is held in RCPT, long before DATA
        item_id = _queue_one(database_url, tmp_path)
        sender = _sender(database_url, port)
        try:
            wait_until(lambda: recorder.rcpt_seen == 1, timeout=60, what="the sender in RCPT")
        finally:
            sender.kill()
            sender.wait()
        held = _item(database_url, tmp_path, item_id)
        assert (held.state, held.committing_at) == ("sending", None)
        recorder.rcpt_pause = 0.0
        assert _take_over(database_url, tmp_path, port) == 1
        assert _delivered(recorder) == Counter({"dot-1@example.se": 1})
    done = _item(database_url, tmp_path, item_id)
    assert (done.state, done.attempts, done.claim_token, done.committing_at) == (
        "sent", 2, None, None)
    assert [entry["result"] for entry in done.history] == ["taken over", "sent"]


def test_a_sender_whose_claim_was_taken_over_abandons_data_before_the_dot(
        database_url: str, tmp_path: Path) -> None:
    """The mark is conditional on the claim: a sender that lost it never ends DATA."""
    with running_sink(PausingSink()) as (recorder, port):
        item_id = _queue_one(database_url, tmp_path)
        runtime = open_runtime(make_config(tmp_path, database_url))
        transport = SmtpRelayTransport(RelaySettings(host="127.0.0.1", port=port,
                                                     security="none"))

        def steal() -> None:
            with Session(runtime.engine) as session:
                item = session.get(Outbox, item_id)
                assert item is not None
                item.claim_token = "another"
                session.add(item)
                session.commit()

        original = transport.deliver_marked

        def deliver_marked(*args: Any) -> str:
            *head, before_dot = args

            def stolen_then_mark() -> None:
                steal()
                before_dot()

            return original(*head, stolen_then_mark)

        transport.deliver_marked = deliver_marked  # type: ignore[method-assign]
        report = flush_outbox(runtime.engine, transport, lease=LEASE)
        runtime.engine.dispose()
        time.sleep(0.5)
        assert (report.sent, recorder.deliveries) == (0, [])
    item = _item(database_url, tmp_path, item_id)
    assert (item.state, item.claim_token, item.committing_at) == ("sending", "another", None)


def test_an_operator_cannot_retry_or_cancel_an_item_its_dead_sender_was_handing_over(
        database_url: str, tmp_path: Path) -> None:
    runtime = open_runtime(make_config(tmp_path, database_url))
    past = utcnow() - timedelta(minutes=5)
    with Session(runtime.engine) as session:
        item = Outbox(purpose="ack", envelope_sender="", message_id="dot-2@example.se",
                      recipient="kund2@bergstromsbygg.se", created_at=past,
                      raw=b"Subject: x\r\n\r\nx\r\n", state="sending", claim_token="dead",
                      attempts=1, claimed_until=past, committing_at=past)
        session.add(item)
        session.commit()
        item_id = item.id
    assert item_id is not None
    for action in (retry_item, cancel_item):
        result = action(runtime.engine, item_id)
        assert not result.done
        assert "the relay most likely has it" in result.message
    with Session(runtime.engine) as session:
        held = session.get(Outbox, item_id)
        assert held is not None and (held.state, held.committing_at is not None) == (
            "sending", True)
    runtime.engine.dispose()
