"""The daemon's SLA monitor: a P1 escalates right after it opens, not at the next minute."""

from __future__ import annotations

import smtplib
from pathlib import Path

from tests.daemon_helpers import make_daemon, wait_until
from tests.mailmaker import support_mail


def _send(port: int, raw: bytes, sender: str) -> None:
    with smtplib.SMTP("127.0.0.1", port, local_hostname="client.test") as client:
        client.sendmail(sender, ["support@example.se"], raw)


def test_a_p1_opened_on_a_running_daemon_escalates_within_seconds(tmp_path: Path) -> None:
    daemon = make_daemon(tmp_path)
    daemon.start()
    try:
        _send(daemon.smtp_port, support_mail(sender="Karin <karin@halsovaxeln.se>",
                                             subject="Utskriften är grå"),
              "karin@halsovaxeln.se")
        wait_until(lambda: daemon.count("ticket") == 1, timeout=30,
                   what="the first ticket", log=daemon.log)
        _send(daemon.smtp_port, support_mail(
            sender="Karin <karin@halsovaxeln.se>", subject="Driftstopp i journalsystemet",
            body="Hej! Prio 1: journalsystemet ligger nere, ingen kommer åt det.\n"),
            "karin@halsovaxeln.se")
        # The monitor's full pass comes once a minute; the pass after new tickets, at once.
        wait_until(lambda: daemon.count("ticket", "escalated_at IS NOT NULL") == 1,
                   timeout=20, what="the P1 escalated on open", log=daemon.log)
        assert daemon.count("outbox", "purpose = 'escalation'") >= 1
        assert daemon.count("ticket", "priority = 'P1' AND escalated_at IS NOT NULL") == 1
    finally:
        assert daemon.stop() == 0
