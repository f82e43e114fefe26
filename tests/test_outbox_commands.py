"""The operator's outbox: cancel, retry, a pass that stops at its batch size, what is waiting."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import MaildCLI
from tests.daemon_helpers import free_port, make_daemon, wait_until
from tests.mailmaker import support_mail


def _mails(directory: Path, count: int) -> Path:
    directory.mkdir()
    for index in range(count):
        (directory / f"{index}.eml").write_bytes(support_mail(
            sender=f"kund{index}@bergstromsbygg.se", subject=f"Fel {index}",
            body=f"Hej! Fel nummer {index} på webbplatsen sedan i morse.\n",
            message_id=f"<cmd-{index}@bergstromsbygg.se>"))
    return directory


def _unreachable_relay() -> dict[str, str]:
    return {"MAILD_OUTBOX_TRANSPORT": "smtp", "MAILD_OUTBOX_RELAY_HOST": "127.0.0.1",
            "MAILD_OUTBOX_RELAY_PORT": str(free_port()), "MAILD_OUTBOX_RELAY_SECURITY": "none"}


def _item(maild: MaildCLI, item_id: int) -> dict[str, object]:
    rows = json.loads(maild("outbox", "list", "--json").stdout)
    return next(row for row in rows if row["id"] == item_id)


def test_a_waiting_item_is_cancelled_and_can_be_queued_again(maild: MaildCLI) -> None:
    maild.env.update(_unreachable_relay())
    ingest = maild("ingest", str(_mails(maild.cwd / "in", 1)))
    assert ingest.code == 0, ingest.stderr
    assert "outbox: 2 waiting (2 to retry later)" in ingest.stdout
    cancelled = maild("outbox", "cancel", "1", "--reason", "kunden har redan fått svar")
    assert cancelled.code == 0, cancelled.stderr
    assert "outbox item 1 cancelled (was queued" in cancelled.stdout
    item = _item(maild, 1)
    assert item["state"] == "cancelled"
    assert "kunden har redan fått svar" in str(item["last_error"])
    again = maild("outbox", "cancel", "1")
    assert (again.code, again.stdout.strip()) == (0, "outbox item 1 was already cancelled")
    assert "cancelled 1" in maild("outbox", "list").stdout
    retried = maild("outbox", "retry", "1")
    assert "outbox item 1 queued again (was cancelled)" in retried.stdout
    assert _item(maild, 1)["state"] == "queued", "the relay is still down: queued for later"
    history = [entry["result"] for entry in _item(maild, 1)["history"]]  # type: ignore[union-attr]
    assert history == ["retried", "cancelled", "requeued", "retried"]


def test_a_sent_item_cannot_be_cancelled_or_retried(maild: MaildCLI) -> None:
    assert maild("ingest", str(_mails(maild.cwd / "in", 1))).code == 0
    assert _item(maild, 1)["state"] == "sent"
    cancel = maild("outbox", "cancel", "1")
    assert cancel.code == 1
    assert "outbox item 1 was sent at" in cancel.stderr
    assert "it cannot be cancelled" in cancel.stderr
    retry = maild("outbox", "retry", "1")
    assert retry.code == 1 and "would send it twice" in retry.stderr
    assert _item(maild, 1)["state"] == "sent"
    missing = maild("outbox", "cancel", "99")
    assert (missing.code, missing.stderr.strip()) == (1, "maild: no outbox item 99")
    help_text = maild("outbox", "cancel", "--help").stdout
    assert "never sent" in help_text and "--reason" in help_text
    assert "cancel" in maild("outbox", "--help").stdout


def test_a_flush_that_stops_at_its_batch_size_says_so_and_the_next_delivers_the_rest(
        maild: MaildCLI) -> None:
    maild.env["MAILD_OUTBOX_BATCH_SIZE"] = "3"
    ingest = maild("ingest", str(_mails(maild.cwd / "in", 4)))  # 4 acks and 4 team copies
    assert ingest.code == 0, ingest.stderr
    assert "outbox: 5 waiting (5 due now)" in ingest.stdout
    assert "stopped at its batch size (3)" in ingest.stdout
    warning = [json.loads(line) for line in ingest.stderr.splitlines() if "batch_limit" in line]
    assert warning and warning[0]["left"] == 5 and warning[0]["batch_size"] == 3
    first = maild("outbox", "flush")
    assert first.stdout.strip() == ("delivered 3, to retry 0, failed 0; stopped at the batch "
                                    "size (3), 2 still due (the next pass delivers them)")
    assert maild("outbox", "flush").stdout.strip() == "delivered 2, to retry 0, failed 0"
    assert len(list((maild.cwd / "var" / "outbox" / "new").iterdir())) == 8


def test_the_daemon_goes_on_with_the_rest_after_a_pass_stops_at_its_batch_size(
        tmp_path: Path) -> None:
    import smtplib

    daemon = make_daemon(tmp_path, env={"MAILD_OUTBOX_BATCH_SIZE": "2",
                                        "MAILD_DAEMON_OUTBOX_INTERVAL": "3600"})
    daemon.start()
    try:
        with smtplib.SMTP("127.0.0.1", daemon.smtp_port) as client:
            for index in range(5):
                client.sendmail(f"kund{index}@bergstromsbygg.se", ["support@example.se"],
                                support_mail(sender=f"kund{index}@bergstromsbygg.se",
                                             subject=f"Fel {index}",
                                             body=f"Fel nummer {index} i kassan.\n"))
        wait_until(lambda: daemon.count("outbox") == 10 and daemon.count(
            "outbox", "state <> 'sent'") == 0, timeout=60,
            what="all ten items sent, two per pass", log=daemon.log)
    finally:
        assert daemon.stop() == 0
    assert '"outbox.batch_limit"' in daemon.log()


def test_the_outbox_lease_and_batch_size_are_settings_with_clear_errors() -> None:
    import pytest

    from maild.config import ConfigError, load_config

    config = load_config(path=None, env={"MAILD_OUTBOX_LEASE_SECONDS": "12",
                                         "MAILD_OUTBOX_BATCH_SIZE": "40"})
    assert (config.outbox_lease_seconds, config.outbox_batch_size) == (12, 40)
    defaults = load_config(path=None, env={})
    assert (defaults.outbox_lease_seconds, defaults.outbox_batch_size) == (25, 500)
    with pytest.raises(ConfigError, match="MAILD_OUTBOX_LEASE_SECONDS: expected a whole "
                                          "number of seconds, at least 1, got '0'"):
        load_config(path=None, env={"MAILD_OUTBOX_LEASE_SECONDS": "0"})
