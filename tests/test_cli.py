"""The `maild` command as users and MTAs see it: what it printed, stored, sent and refused."""

from __future__ import annotations

import json
import re
import sqlite3
import threading

from tests.conftest import MaildCLI
from tests.mailmaker import support_mail

NUMBER = re.compile(r"^MD-\d{4}-\d{5}-\d$")
ACKS = "outbox WHERE purpose = 'ack'"


def _count(maild: MaildCLI, table: str) -> int:
    path = maild.cwd / "var" / "maild.db"
    with sqlite3.connect(path) as connection:
        return int(connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


def test_deliver_prints_the_ticket_number_and_redelivery_is_one_ticket(maild: MaildCLI) -> None:
    raw = support_mail()
    first = maild("deliver", "--process", "--from", "anna.lind@bergstromsbygg.se", "--to",
                  "support@example.se", input=raw)
    assert first.code == 0, first.stderr
    number = first.stdout.strip()
    assert NUMBER.match(number)
    again = maild("deliver", "--process", "--to", "teknik@example.se",
                  input=b"Received: from relay2\r\nDelivered-To: teknik@example.se\r\n" + raw)
    assert again.code == 0
    assert again.stdout.strip() == number
    assert _count(maild, "ticket") == 1
    assert _count(maild, ACKS) == 1
    delivered = [path.read_bytes() for path in (maild.cwd / "var" / "outbox" / "new").iterdir()]
    [ack] = [raw for raw in delivered if b"Auto-Submitted: auto-replied" in raw]
    assert number.encode() in ack
    [team] = [raw for raw in delivered if b"X-Maild-Queue: web" in raw]
    assert b"To: webb@example.se" in team


def test_deliver_machine_mail_says_no_ticket(maild: MaildCLI) -> None:
    result = maild("deliver", "--process", "--from", "", input=support_mail())
    assert result.code == 0
    assert "bounce, no ticket" in result.stdout
    assert _count(maild, "ticket") == 0


def test_deliver_exits_75_while_the_database_is_locked(maild: MaildCLI) -> None:
    assert maild("deliver", input=support_mail(subject="warm-up")).code == 0
    path = maild.cwd / "var" / "maild.db"
    locker = sqlite3.connect(path, isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")
    locker.execute("INSERT INTO ticket_counter (scope, last) VALUES ('lock', 0)")
    try:
        result = maild("deliver", input=support_mail(subject="during the lock"))
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    assert result.code == 75, result.stderr
    assert "temporary failure" in result.stderr
    assert _count(maild, "inbound") == 1, "nothing of the refused message was stored"
    retry = maild("deliver", "--process", input=support_mail(subject="during the lock"))
    assert retry.code == 0
    assert NUMBER.match(retry.stdout.strip())
    assert _count(maild, "inbound") == 2


def test_deliver_exits_75_when_the_database_is_unreachable(maild: MaildCLI) -> None:
    result = maild("deliver", input=support_mail(), extra_env={
        "MAILD_DATABASE_URL": "postgresql+psycopg://maild@127.0.0.1:1/maild"})
    assert result.code == 75
    assert "message not stored" in result.stderr


def test_deliver_with_broken_rules_keeps_the_message(maild: MaildCLI) -> None:
    broken = maild.cwd / "broken-rules"
    broken.mkdir()
    result = maild("--rules-dir", str(broken), "deliver", "--process", input=support_mail())
    assert result.code == 0
    assert "processing deferred" in result.stdout
    assert _count(maild, "inbound") == 1
    assert _count(maild, "ticket") == 0
    later = maild("process")
    assert later.code == 0
    assert "processed 1" in later.stdout
    assert _count(maild, "ticket") == 1


def test_deliver_refuses_an_empty_message(maild: MaildCLI) -> None:
    result = maild("deliver", input=b"")
    assert result.code == 65
    assert "no message" in result.stderr


def test_route_prints_the_decision_and_writes_nothing(maild: MaildCLI) -> None:
    message = maild.cwd / "mail.eml"
    message.write_bytes(support_mail(sender='"support@kund.se" <x.y@gmail.com>'))
    result = maild("route", str(message), "--json")
    assert result.code == 0, result.stderr
    decision = json.loads(result.stdout)
    for key in ("kind", "sender", "sender_domain", "private", "customer", "policy", "queue",
                "priority", "missing", "ack", "ack_reason", "ticket", "response_due"):
        assert key in decision
    assert decision["kind"] == "new"
    assert decision["ticket"] is None
    assert decision["sender"] == "x.y@gmail.com"
    assert decision["private"] is True
    assert decision["queue"] == "triage"
    assert decision["ack"] is True
    assert not (maild.cwd / "var").exists(), "a dry run must not create the database"

    assert maild("deliver", input=support_mail()).code == 0
    before = (_count(maild, "inbound"), _count(maild, "ticket"), _count(maild, "outbox"))
    text = maild("route", str(message))
    assert text.code == 0
    assert "rules_tried:" in text.stdout
    assert (_count(maild, "inbound"), _count(maild, "ticket"), _count(maild, "outbox")) == before


def test_route_of_a_missing_file_is_a_clear_error(maild: MaildCLI) -> None:
    result = maild("route", "nowhere.eml")
    assert result.code == 1
    assert "nowhere.eml" in result.stderr


def test_inbound_raw_is_byte_identical_and_views_work(maild: MaildCLI) -> None:
    raw = support_mail().replace(b"\r\n", b"\n") + b"\n\xff trailing junk\n"
    number = maild("deliver", "--process", input=raw).stdout.strip()
    listing = json.loads(maild("inbound", "list", "--json").stdout)["messages"]
    assert listing[0]["state"] == "processed"
    assert listing[0]["kind"] == "new"
    assert maild("inbound", "raw", str(listing[0]["id"])).raw_stdout == raw
    shown = maild("ticket", "show", number)
    assert shown.code == 0
    assert number in shown.stdout
    assert "rules_tried" in shown.stdout
    as_json = json.loads(maild("ticket", "show", number, "--json").stdout)
    assert [m["role"] for m in as_json["messages"]] == ["opening", "ack"]
    assert maild("ticket", "show", "MD-2026-99999-9").code == 1
    tickets = maild("tickets")
    assert number in tickets.stdout
    assert "bergstroms-bygg" in tickets.stdout
    outbox = maild("outbox")
    assert "sent 2" in outbox.stdout  # the acknowledgement and the team's copy
    assert "no stored messages" in maild("quarantine").stdout


def test_rules_check(maild: MaildCLI) -> None:
    ok = maild("rules", "check")
    assert ok.code == 0
    assert "ok" in ok.stdout
    broken = maild.cwd / "other"
    broken.mkdir()
    (broken / "queues.toml").write_text("[support\nname = 'x'\n")
    result = maild("rules", "check", str(broken))
    assert result.code == 78
    assert f"{broken / 'queues.toml'}:1: TOML syntax error" in result.stderr


def test_concurrent_deliveries_on_sqlite_make_distinct_tickets(maild: MaildCLI) -> None:
    assert maild("deliver", input=support_mail(subject="first")).code == 0
    results: list[str] = []

    def one(index: int) -> None:
        done = maild("deliver", "--process", input=support_mail(subject=f"parallel {index}"))
        results.append(done.stdout.strip() if done.code == 0 else f"exit {done.code}")

    threads = [threading.Thread(target=one, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(NUMBER.match(r) for r in results), results
    assert len(set(results)) == 4


def test_ingest_reads_eml_mbox_and_maildir_and_is_idempotent(maild: MaildCLI) -> None:
    import mailbox

    mbox_path = maild.cwd / "old.mbox"
    box = mailbox.mbox(mbox_path)
    for index in range(3):
        box.add(support_mail(subject=f"från mbox {index}", body=f"Fråga {index} ur arkivet.\n",
                             sender=f"kollega{index}@bergstromsbygg.se"))
    box.close()
    maildir = mailbox.Maildir(maild.cwd / "Maildir", create=True)
    for index in range(2):
        maildir.add(support_mail(subject=f"från maildir {index}", body=f"Maildir {index}.\n",
                                 sender=f"person{index}@lindqvistlogistik.se"))
    (maild.cwd / "one.eml").write_bytes(support_mail(subject="en fil"))

    first = maild("ingest", str(mbox_path), str(maild.cwd / "Maildir"), "one.eml")
    assert first.code == 0, first.stderr
    assert "stored 6, duplicates 0, could not store 0" in first.stdout
    assert "acknowledgements delivered 6" in first.stdout
    assert _count(maild, "ticket") == 6

    again = maild("ingest", str(mbox_path), str(maild.cwd / "Maildir"), "one.eml")
    assert again.code == 0
    assert "stored 0, duplicates 6" in again.stdout
    assert "acknowledgements delivered 0" in again.stdout
    assert (_count(maild, "ticket"), _count(maild, ACKS)) == (6, 6)
    assert len(list((maild.cwd / "var" / "outbox" / "new").iterdir())) == 12, "acks and copies"


def test_ingest_exits_1_when_something_could_not_be_read(maild: MaildCLI) -> None:
    (maild.cwd / "one.eml").write_bytes(support_mail())
    result = maild("ingest", "one.eml", "missing-folder")
    assert result.code == 1
    assert "stored 1" in result.stdout
    assert "not stored: missing-folder: no such file or directory" in result.stderr
