"""Every outbox item reaches the relay exactly once: in a daemon under load, across processes."""

from __future__ import annotations

import math
import os
import smtplib
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from sqlalchemy import event
from sqlmodel import Session, select

from maild.models import Outbox, utcnow
from maild.respond.maildir import MaildirTransport
from maild.respond.outbox import CLAIM_BATCH, flush_outbox
from maild.runtime import Runtime, open_runtime
from tests.conftest import ROOT, make_config
from tests.daemon_helpers import RunningMaild, make_daemon, wait_until
from tests.mailmaker import support_mail
from tests.sink import RecordingSink

MESSAGES = 120


def _send_all(port: int, count: int) -> None:
    def one(index: int) -> None:
        # Every tenth customer is Räksmörgås Catering, whose domain is internationalised.
        # The others write from Hälsoväxeln, whose agreement entitles its whole domain: every
        # case of theirs is confirmed, whatever the rate.
        domain = "räksmörgås.se" if index % 10 == 0 else "halsovaxeln.se"
        raw = support_mail(sender=f"Kund {index} <kund{index}@{domain}>",
                           subject=f"Fel nummer {index}",
                           body=f"Hej! Fel nummer {index} har uppstått på webbplatsen.\n",
                           message_id=f"<load-{index}@bergstromsbygg.se>")
        with smtplib.SMTP("127.0.0.1", port, local_hostname="client.test") as client:
            client.sendmail(f"kund{index}@{domain.encode('idna').decode()}",
                            ["support@example.se"], raw)

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(one, range(count)))


def _relay_daemon(tmp_path: Path, port: int) -> RunningMaild:
    return make_daemon(tmp_path, env={
        "MAILD_OUTBOX_TRANSPORT": "smtp", "MAILD_OUTBOX_RELAY_HOST": "127.0.0.1",
        "MAILD_OUTBOX_RELAY_PORT": str(port), "MAILD_OUTBOX_RELAY_SECURITY": "none",
        "MAILD_DAEMON_OUTBOX_INTERVAL": "0.05", "MAILD_ACK_MAX_PER_HOUR": "1000"})


def test_a_daemon_under_load_sends_every_outbox_item_to_the_relay_exactly_once(
        tmp_path: Path, sink: tuple[RecordingSink, int]) -> None:
    recorder, port = sink
    recorder.delay = 0.02
    daemon = _relay_daemon(tmp_path, port)
    daemon.start()
    try:
        _send_all(daemon.smtp_port, MESSAGES)
        wait_until(lambda: daemon.count("inbound", "state = 'processed'") == MESSAGES,
                   timeout=180, what="every message processed", log=daemon.log)
        wait_until(lambda: daemon.count("outbox", "state <> 'sent'") == 0, timeout=180,
                   what="every outbox item sent", log=daemon.log)
    finally:
        assert daemon.stop() == 0
    items = {str(row[0]): str(row[1]) for row in daemon.query(
        "SELECT message_id, purpose FROM outbox")}
    assert Counter(items.values()) == {"ack": MESSAGES, "team": MESSAGES}
    received = Counter(str(d.message["Message-ID"]).strip("<>") for d in recorder.deliveries)
    twice = {mid: n for mid, n in received.items() if n > 1}
    assert not twice, f"{len(twice)} items reached the relay more than once"
    assert set(received) == set(items), "every item reached the relay"
    idn = [d for d in recorder.deliveries if d.recipients[0].endswith("@xn--rksmrgs-5wao1o.se")]
    assert len(idn) == MESSAGES // 10, "the internationalised customers got theirs too"
    sent_events = Counter(str(event["outbox_id"]) for event in daemon.events("outbox.sent"))
    assert set(sent_events.values()) == {1}
    assert not daemon.events("outbox.retry")


ITEMS = 120

_FLUSHER = textwrap.dedent("""
    import sys
    from datetime import timedelta
    from pathlib import Path
    from maild.config import RelaySettings
    from maild.db import open_database
    from maild.log import configure_logging
    from maild.respond.outbox import flush_outbox
    from maild.respond.relay import SmtpRelayTransport

    configure_logging("warning", "json")
    url, port = sys.argv[1], int(sys.argv[2])
    engine = open_database(url)
    transport = SmtpRelayTransport(RelaySettings(host="127.0.0.1", port=port, security="none"))
    sent = 0
    while True:
        report = flush_outbox(engine, transport, limit=25, lease=timedelta(seconds=5))
        sent += report.sent
        if report.sent == 0 and not report.left:
            break
    print(sent)
""")


def _queue_items(url: str, tmp_path: Path, count: int) -> list[str]:
    runtime = open_runtime(make_config(tmp_path, url))
    ids = []
    with Session(runtime.engine) as session:
        for index in range(count):
            message_id = f"item-{index}@example.se"
            raw = (f"From: support@example.se\r\nTo: kund{index}@bergstromsbygg.se\r\n"
                   f"Subject: item {index}\r\nMessage-ID: <{message_id}>\r\n\r\nHej\r\n")
            session.add(Outbox(purpose="ack", envelope_sender="", message_id=message_id,
                               recipient=f"kund{index}@bergstromsbygg.se",
                               raw=raw.encode(), created_at=utcnow()))
            ids.append(message_id)
        session.commit()
    runtime.engine.dispose()
    return ids


def test_two_processes_flushing_one_outbox_send_each_item_once(
        database_url: str, tmp_path: Path, sink: tuple[RecordingSink, int]) -> None:
    recorder, port = sink
    recorder.delay = 0.005
    expected = _queue_items(database_url, tmp_path, ITEMS)
    workers = [subprocess.Popen([sys.executable, "-c", _FLUSHER, database_url, str(port)],
                                cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
               for _ in range(2)]
    sent = []
    for worker in workers:
        out, err = worker.communicate(timeout=300)
        assert worker.returncode == 0, err.decode()[-2000:]
        sent.append(int(out.decode().split()[-1]))
    received = Counter(str(d.message["Message-ID"]).strip("<>") for d in recorder.deliveries)
    assert sorted(received) == sorted(expected)
    assert set(received.values()) == {1}, "no item reached the relay twice"
    assert sum(sent) == ITEMS and all(sent), f"both processes delivered a share: {sent}"
    runtime = open_runtime(make_config(tmp_path, database_url))
    with Session(runtime.engine) as session:
        items = session.exec(select(Outbox)).all()
        assert {item.state for item in items} == {"sent"}
        assert {item.attempts for item in items} == {1}
        assert all(item.claim_token is None and item.claimed_until is None for item in items)
    runtime.engine.dispose()


@dataclass
class SlowTransport:
    """Records what it was handed; each delivery takes `seconds`."""

    seconds: float = 0.0
    delivered: list[int] = field(default_factory=list)

    def deliver(self, item_id: int, raw: bytes, envelope_sender: str, recipient: str) -> str:
        time.sleep(self.seconds)
        self.delivered.append(item_id)
        return f"slow transport, item {item_id}"


def _item(session: Session, index: int, **values: object) -> Outbox:
    item = Outbox(purpose="ack", envelope_sender="", message_id=f"lease-{index}@example.se",
                  recipient=f"kund{index}@bergstromsbygg.se", raw=b"Subject: x\r\n\r\nx\r\n",
                  created_at=utcnow(), **values)
    session.add(item)
    return item


def test_an_item_held_by_a_dead_sender_is_taken_over_after_its_lease_and_a_live_one_is_not(
        runtime: Runtime) -> None:
    now = utcnow()
    with Session(runtime.engine) as session:
        dead = _item(session, 1, state="sending", claim_token="dead", attempts=1,
                     claimed_until=now - timedelta(seconds=1))
        live = _item(session, 2, state="sending", claim_token="live", attempts=1,
                     claimed_until=now + timedelta(seconds=60))
        session.commit()
        dead_id, live_id = dead.id, live.id
    transport = SlowTransport()
    report = flush_outbox(runtime.engine, transport, lease=timedelta(seconds=30))
    assert (report.sent, transport.delivered) == (1, [dead_id])
    with Session(runtime.engine) as session:
        taken = session.get(Outbox, dead_id)
        held = session.get(Outbox, live_id)
        assert taken is not None and held is not None
        assert (taken.state, taken.attempts, taken.claim_token) == ("sent", 2, None)
        assert [entry["result"] for entry in taken.history] == ["taken over", "sent"]
        assert "lease ran out" in taken.history[0]["detail"]
        assert (held.state, held.claim_token, held.attempts) == ("sending", "live", 1)


def _state(runtime: Runtime, item_id: int | None) -> str:
    with Session(runtime.engine) as session:
        item = session.get(Outbox, item_id)
        return item.state if item is not None else ""


def test_a_slow_send_keeps_renewing_its_lease_so_no_other_sender_takes_it_over(
        runtime: Runtime) -> None:
    with Session(runtime.engine) as session:
        item = _item(session, 1)
        session.commit()
        item_id = item.id
    # The send outlasts the lease more than twice over; the lease is long enough that a
    # busy machine (the whole suite at once) renews it in time, every third of it.
    slow, eager = SlowTransport(seconds=7.0), SlowTransport()
    lease = timedelta(seconds=3)
    first = threading.Thread(target=flush_outbox, args=(runtime.engine, slow),
                             kwargs={"lease": lease})
    first.start()
    wait_until(lambda: _state(runtime, item_id) == "sending", what="the slow sender's claim")
    while first.is_alive():  # another sender keeps trying while the slow one works
        flush_outbox(runtime.engine, eager, lease=lease)
        time.sleep(0.1)
    first.join()
    assert slow.delivered == [item_id]
    assert eager.delivered == [], "the item was taken over while it was being sent"
    with Session(runtime.engine) as session:
        done = session.get(Outbox, item_id)
        assert done is not None and (done.state, done.attempts) == ("sent", 1)


def test_a_daemon_under_load_writes_every_item_to_the_maildir_once_without_errors(
        tmp_path: Path) -> None:
    daemon = make_daemon(tmp_path, env={"MAILD_DAEMON_OUTBOX_INTERVAL": "0.05",
                                        "MAILD_ACK_MAX_PER_HOUR": "1000"})
    daemon.start()
    try:
        _send_all(daemon.smtp_port, MESSAGES // 2)
        wait_until(lambda: daemon.count("inbound", "state = 'processed'") == MESSAGES // 2,
                   timeout=180, what="every message processed", log=daemon.log)
        wait_until(lambda: daemon.count("outbox", "state <> 'sent'") == 0, timeout=180,
                   what="every outbox item sent", log=daemon.log)
    finally:
        assert daemon.stop() == 0
    files = list((daemon.cwd / "var" / "outbox" / "new").iterdir())
    assert len(files) == daemon.count("outbox") == MESSAGES
    assert list((daemon.cwd / "var" / "outbox" / "tmp").iterdir()) == []
    assert daemon.count("outbox", "last_error IS NOT NULL OR attempts <> 1") == 0
    sent_events = Counter(str(event["outbox_id"]) for event in daemon.events("outbox.sent"))
    assert len(sent_events) == MESSAGES and set(sent_events.values()) == {1}
    assert not daemon.events("outbox.retry")


def test_a_pass_claims_and_records_its_items_a_batch_at_a_time(runtime: Runtime) -> None:
    """Forty items cost the database a few commits, not two per item."""
    with Session(runtime.engine) as session:
        ids = [_item(session, index) for index in range(40)]
        session.commit()
        ids = [item.id for item in ids]
    commits = Counter[str]()
    listener = lambda _connection: commits.update(["commit"])  # noqa: E731
    event.listen(runtime.engine, "commit", listener)
    try:
        report = flush_outbox(runtime.engine, SlowTransport())
    finally:
        event.remove(runtime.engine, "commit", listener)
    assert report.sent == 40
    # two per batch, and one for the look that finds nothing left (it writes nothing)
    assert commits["commit"] <= 2 * math.ceil(40 / CLAIM_BATCH) + 1, commits
    with Session(runtime.engine) as session:
        items = session.exec(select(Outbox)).all()
        assert sorted(item.id for item in items) == sorted(ids)
        assert {(item.state, item.attempts, item.claim_token) for item in items} == {
            ("sent", 1, None)}


_DYING_SENDER = textwrap.dedent("""
    import sys, time
    from datetime import timedelta
    from pathlib import Path
    from maild.db import make_engine
    from maild.respond.maildir import MaildirTransport
    from maild.respond.outbox import flush_outbox

    class DiesAfterThree(MaildirTransport):
        def hang_after_three(self):
            if len(list((self.root / "new").glob("*"))) >= 3:
                print("three delivered", flush=True)
                time.sleep(600)  # killed here, its batch claimed and not yet recorded

        def deliver(self, item_id, raw, envelope_sender="", recipient=""):
            self.hang_after_three()
            return super().deliver(item_id, raw, envelope_sender, recipient)

        def deliver_first(self, item_id, raw, envelope_sender="", recipient=""):
            self.hang_after_three()
            return super().deliver_first(item_id, raw, envelope_sender, recipient)

    flush_outbox(make_engine(sys.argv[1]), DiesAfterThree(Path(sys.argv[2])),
                 lease=timedelta(seconds=2))
""")


def test_a_sender_killed_mid_batch_leaves_each_item_delivered_once(
        runtime: Runtime, tmp_path: Path) -> None:
    with Session(runtime.engine) as session:
        items = [_item(session, index) for index in range(6)]
        session.commit()
        ids = sorted(int(item.id or 0) for item in items)
    maildir = tmp_path / "outbox"
    sender = subprocess.Popen(
        [sys.executable, "-c", _DYING_SENDER, runtime.config.database_url, str(maildir)],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE)
    try:
        assert sender.stdout is not None
        for line in sender.stdout:  # its log lines, then what it says before it hangs
            if line.strip() == b"three delivered":
                break
        else:
            raise AssertionError("the sender ended before it delivered three items")
    finally:
        sender.kill()
        sender.wait()
    assert {_state(runtime, item_id) for item_id in ids} == {"sending"}, "claimed, not recorded"
    transport = MaildirTransport(maildir)
    time.sleep(2.5)  # the dead sender's lease runs out
    report = flush_outbox(runtime.engine, transport)
    assert report.sent == 6
    written = sorted((maildir / "new").iterdir())
    assert [path.name for path in written] == sorted(transport.file_name(i) for i in ids)
    with Session(runtime.engine) as session:
        for item in session.exec(select(Outbox)).all():
            assert (item.state, item.attempts) == ("sent", 2)
            assert [entry["result"] for entry in item.history] == ["taken over", "sent"]
