"""Every outbox item reaches the relay exactly once: in a daemon under load, across processes."""

from __future__ import annotations

import json
import smtplib
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.daemon_helpers import RunningMaild, make_daemon, wait_until
from tests.mailmaker import support_mail
from tests.sink import RecordingSink

MESSAGES = 120


def _send_all(port: int, count: int) -> None:
    def one(index: int) -> None:
        raw = support_mail(sender=f"Kund {index} <kund{index}@bergstromsbygg.se>",
                           subject=f"Fel nummer {index}",
                           body=f"Hej! Fel nummer {index} har uppstått på webbplatsen.\n",
                           message_id=f"<load-{index}@bergstromsbygg.se>")
        with smtplib.SMTP("127.0.0.1", port, local_hostname="client.test") as client:
            client.sendmail(f"kund{index}@bergstromsbygg.se", ["support@example.se"], raw)

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(one, range(count)))


def _events(daemon: RunningMaild, name: str) -> list[dict[str, object]]:
    events = []
    for line in daemon.log().splitlines():
        if line.startswith("{") and f'"{name}"' in line:
            event = json.loads(line)
            if event.get("event") == name:
                events.append(event)
    return events


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
    sent_events = Counter(str(event["outbox_id"]) for event in _events(daemon, "outbox.sent"))
    assert set(sent_events.values()) == {1}
    assert not _events(daemon, "outbox.retry")
