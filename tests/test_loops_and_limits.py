"""Never answer a machine twice, never flood a person: bounces, suppression, limits, loops."""

from __future__ import annotations

import shutil
import smtplib
import threading
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from sqlmodel import Session, col, select

from maild.models import Outbox, Suppression, TicketMessage
from maild.runtime import Runtime
from tests.conftest import RULES
from tests.daemon_helpers import free_port, make_daemon, wait_until
from tests.mailmaker import authenticated_headers, support_mail
from tests.pipeline_helpers import acks, inbound, receive


def _dsn(to: str, original_id: str, status: str = "5.1.1", action: str = "failed") -> bytes:
    return (
        f"From: Mail Delivery System <MAILER-DAEMON@mx.bergstromsbygg.se>\r\nTo: {to}\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\nMIME-Version: 1.0\r\n"
        "Message-ID: <dsn-1@mx.bergstromsbygg.se>\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n\r\n'
        "--B\r\nContent-Type: text/plain\r\n\r\nThis is the mail system at host mx.\r\n"
        "--B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx\r\n\r\n"
        f"Final-Recipient: rfc822; anna.lind@bergstromsbygg.se\r\nAction: {action}\r\n"
        f"Status: {status}\r\n\r\n"
        "--B\r\nContent-Type: text/rfc822-headers\r\n\r\nFrom: support@example.se\r\n"
        f"Message-ID: <{original_id}>\r\nSubject: [MD] ack\r\n\r\n--B--\r\n").encode()


def _ack_item(runtime: Runtime) -> Outbox:
    with Session(runtime.engine) as session:
        return session.exec(select(Outbox).where(col(Outbox.purpose) == "ack")).one()


def test_a_bounce_at_the_verp_address_marks_the_item_and_suppresses_the_address(
        sqlite_runtime: Runtime) -> None:
    opened = receive(sqlite_runtime, support_mail())
    item = _ack_item(sqlite_runtime)
    assert item.bounce_token
    assert item.envelope_sender == f"support+bounce-{item.bounce_token}@example.se"
    bounce = receive(sqlite_runtime, _dsn(item.envelope_sender, item.message_id), sender="",
                     to=(item.envelope_sender,))
    assert bounce.kind == "bounce" and bounce.ticket == opened.ticket
    decision = inbound(sqlite_runtime, bounce.inbound_id).decision
    assert decision is not None and decision["ack"] is False
    assert decision["bounce_of"]["matched_by"].startswith("VERP address")
    assert decision["bounce_of"]["permanent"] is True
    item = _ack_item(sqlite_runtime)
    assert item.state == "bounced"
    with Session(sqlite_runtime.engine) as session:
        roles = session.exec(select(TicketMessage.role).order_by(col(TicketMessage.id))).all()
        assert roles == ["opening", "ack", "bounce"]
        assert session.get(Suppression, "anna.lind@bergstromsbygg.se") is not None
    again = receive(sqlite_runtime, support_mail(subject="Ny fråga", body="En annan fråga.\n"))
    decision = inbound(sqlite_runtime, again.inbound_id).decision
    assert again.ticket is not None and decision is not None
    assert decision["ack"] is False and "bounced permanently" in decision["ack_reason"]
    assert len(acks(sqlite_runtime)) == 1


def test_a_bounce_to_another_address_is_matched_by_the_returned_message_id(
        sqlite_runtime: Runtime) -> None:
    opened = receive(sqlite_runtime, support_mail())
    item = _ack_item(sqlite_runtime)
    bounce = receive(sqlite_runtime, _dsn("support@example.se", item.message_id))
    assert bounce.ticket == opened.ticket
    decision = inbound(sqlite_runtime, bounce.inbound_id).decision
    assert decision is not None
    assert decision["bounce_of"]["matched_by"] == f"returned message {item.message_id}"


def test_a_delay_report_is_recorded_but_not_a_bounce(sqlite_runtime: Runtime) -> None:
    receive(sqlite_runtime, support_mail())
    item = _ack_item(sqlite_runtime)
    receive(sqlite_runtime, _dsn(item.envelope_sender, item.message_id, "4.4.1", "delayed"),
            sender="", to=(item.envelope_sender,))
    item = _ack_item(sqlite_runtime)
    assert item.state == "queued"
    assert item.history[-1]["result"] == "delayed"
    with Session(sqlite_runtime.engine) as session:
        assert session.exec(select(Suppression)).all() == []


def test_the_same_text_twice_gets_one_acknowledgement(sqlite_runtime: Runtime) -> None:
    receive(sqlite_runtime, support_mail(subject="Hjälp", body="Sidan är nere igen!\n"))
    second = receive(sqlite_runtime, support_mail(subject="Hjälp!!",
                                                  body="Sidan  är nere\nigen!\n"))
    decision = inbound(sqlite_runtime, second.inbound_id).decision
    assert decision is not None and decision["ack"] is False
    assert "the same text from anna.lind@bergstromsbygg.se was acknowledged" in \
        decision["ack_reason"]
    assert len(acks(sqlite_runtime)) == 1


def test_no_acknowledgement_to_a_list_or_no_reply_address(sqlite_runtime: Runtime) -> None:
    outcome = receive(sqlite_runtime, support_mail(headers={"Reply-To": "noreply@kund.se"}))
    decision = inbound(sqlite_runtime, outcome.inbound_id).decision
    assert decision is not None and decision["ack"] is False
    assert "list or unattended address" in decision["ack_reason"]
    assert outcome.ticket is not None


def _peer_rules(tmp_path: Path) -> Path:
    rules = tmp_path / "rules-b"
    shutil.copytree(RULES, rules)
    for path in [rules / "addresses.toml", *(rules / "customers").glob("*.toml")]:
        path.write_text(path.read_text().replace("@example.se", "@helpdesk-b.test"))
    return rules


def test_two_maild_instances_stop_after_one_acknowledgement_each(tmp_path: Path) -> None:
    a_dir, b_dir = tmp_path / "a", tmp_path / "b"
    a_dir.mkdir()
    b_dir.mkdir()
    a = make_daemon(a_dir)
    b = make_daemon(b_dir, rules=_peer_rules(tmp_path))
    relay = {"MAILD_OUTBOX_TRANSPORT": "smtp", "MAILD_OUTBOX_RELAY_HOST": "127.0.0.1",
             "MAILD_OUTBOX_RELAY_SECURITY": "none", "MAILD_DAEMON_OUTBOX_INTERVAL": "0.3"}
    a.env.update(relay, MAILD_OUTBOX_RELAY_PORT=str(b.smtp_port))
    b.env.update(relay, MAILD_OUTBOX_RELAY_PORT=str(a.smtp_port),
                 MAILD_MAIL_DOMAIN="helpdesk-b.test")
    a.start()
    b.start()
    try:
        # B's support desk writes to A (a forwarded case); A acknowledges to B ...
        with smtplib.SMTP("127.0.0.1", a.smtp_port) as client:
            client.sendmail("support@helpdesk-b.test", ["support@example.se"], support_mail(
                sender="Helpdesk B <support@helpdesk-b.test>", to="support@example.se"))
        wait_until(lambda: a.count("outbox", "state = 'sent' AND purpose = 'ack'") == 1,
                   what="A's ack sent")
        # ... and B stores A's acknowledgement as machine mail, without answering it.
        wait_until(lambda: b.count("inbound", "state = 'processed'") == 1, what="B got it")
        [(kind,)] = b.query("SELECT kind FROM inbound")
        assert kind in ("autoreply", "loop")
        wait_until(lambda: "outbox.sent" in a.log())
        import time
        time.sleep(1.5)
        assert a.count("outbox", "purpose = 'ack'") == 1
        assert b.count("outbox", "purpose = 'ack'") == 0
        assert a.count("inbound") == 1 and b.count("inbound") == 1
    finally:
        assert a.stop() == 0
        assert b.stop() == 0


class NaiveResponder:
    """An auto-responder that answers everything and knows nothing of RFC 3834."""

    def __init__(self, maild_port: int) -> None:
        self.maild_port = maild_port
        self.received: list[bytes] = []
        self.sent = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        # This test's relay takes all of maild's mail; the robot answers what reaches it.
        if envelope.rcpt_tos == ["robot@autosvar.test"]:
            self.received.append(envelope.original_content)
            threading.Thread(target=self.reply, args=(envelope.original_content,)).start()
        return "250 OK"

    def reply(self, raw: bytes) -> None:
        from email import message_from_bytes

        original = message_from_bytes(raw)
        answer = EmailMessage()
        for name, value in authenticated_headers("robot@autosvar.test"):
            answer[name] = value  # through the organisation's MTA, DMARC pass
        answer["From"] = "robot@autosvar.test"
        answer["To"] = "support@example.se"
        answer["Subject"] = f"Re: {original['Subject']}"
        answer.set_content("Thank you for your message. We will answer within 3 days.")
        with smtplib.SMTP("127.0.0.1", self.maild_port) as client:
            client.send_message(answer)
        self.sent += 1


def test_a_naive_auto_responder_gets_one_acknowledgement(tmp_path: Path) -> None:
    a = make_daemon(tmp_path)
    responder = NaiveResponder(a.smtp_port)
    port = free_port()
    controller = Controller(responder, hostname="127.0.0.1", port=port)
    controller.start()
    a.env.update({"MAILD_OUTBOX_TRANSPORT": "smtp", "MAILD_OUTBOX_RELAY_HOST": "127.0.0.1",
                  "MAILD_OUTBOX_RELAY_PORT": str(port), "MAILD_OUTBOX_RELAY_SECURITY": "none",
                  "MAILD_DAEMON_OUTBOX_INTERVAL": "0.3"})
    a.start()
    try:
        with smtplib.SMTP("127.0.0.1", a.smtp_port) as client:
            client.sendmail("robot@autosvar.test", ["support@example.se"], support_mail(
                sender="robot@autosvar.test", subject="Offert"))
        wait_until(lambda: responder.sent == 1, what="the responder's answer to the ack")
        wait_until(lambda: a.count("inbound", "state = 'processed'") == 2)
        import time
        time.sleep(1.5)
        assert len(responder.received) == 1, "maild answered the responder only once"
        [(kind,)] = a.query("SELECT kind FROM inbound WHERE id = 2")
        assert kind == "followup", "the reply carries the ticket tag and joins the ticket"
        assert a.count("ticket") == 1
    finally:
        assert a.stop() == 0
        controller.stop()


def test_a_web_form_mail_with_envelope_sender_nobody_becomes_a_ticket(
        sqlite_runtime: Runtime) -> None:
    for index, envelope in enumerate(("nobody@www.bergstromsbygg.se", "bounce@bergstromsbygg.se")):
        outcome = receive(sqlite_runtime, support_mail(
            subject=f"Kontaktformulär {index}",
            body=f"Namn: Anna Lind\n\nBokningssidan visar fel pris i kassan, formulär {index}.\n"),
            sender=envelope)
        decision = inbound(sqlite_runtime, outcome.inbound_id).decision
        assert decision is not None
        assert (outcome.kind, decision["customer"], decision["ack"]) == (
            "new", "bergstroms-bygg", True), decision["ack_reason"]
        assert outcome.ticket is not None
    assert len(acks(sqlite_runtime)) == 2
