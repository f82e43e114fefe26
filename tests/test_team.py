"""The team's side: delivery to the queue's team, ticket states, and the team's commands."""

from __future__ import annotations

import json
from datetime import timedelta
from email import message_from_bytes
from email.policy import default
from pathlib import Path

from sqlmodel import Session, col, select

from maild.models import Outbox, Ticket, TicketEvent
from maild.runtime import Runtime, open_runtime
from tests.conftest import FIXTURES, MaildCLI, make_config
from tests.mailmaker import authenticated_message, support_mail
from tests.pipeline_helpers import filled, inbound, receive
from tests.sink import RecordingSink
from tests.test_required_info import PNG


def _with_screenshot() -> bytes:
    message = authenticated_message(
        subject="Bildspelet fastnar", message_id="<bildspel@bergstromsbygg.se>",
        text="Hej! Bildspelet på startsidan fastnar på sista bilden sedan igår "
             "kl 14.30, i Chrome 131 på Windows 11.\n\nMvh Anna\n")
    message.add_alternative("<p>Hej! Bildspelet på startsidan <b>fastnar</b>.</p>",
                            subtype="html")
    message.add_attachment(PNG, maintype="image", subtype="png", filename="skarmbild.png")
    return message.as_bytes()


def test_a_new_ticket_reaches_the_team_with_a_summary_and_the_original_intact(
        tmp_path: Path, sink: tuple[RecordingSink, int]) -> None:
    recorder, port = sink
    runtime = open_runtime(make_config(tmp_path, **{
        "outbox.transport": "smtp", "outbox.relay_host": "127.0.0.1",
        "outbox.relay_port": port, "outbox.relay_security": "none"}))
    raw = _with_screenshot()
    outcome = receive(runtime, raw)
    runtime.flush_outbox()
    [team] = [d for d in recorder.deliveries if d.recipients == ["webb@example.se"]]
    message = team.message
    assert message["Subject"] == f"[{outcome.ticket}][Normal] Bildspelet fastnar"
    assert message["X-Maild-Ticket"] == outcome.ticket
    assert message["X-Maild-Queue"] == "web"
    assert message["X-Maild-Priority"] == "Normal"
    assert message["X-Maild-Customer"] == "bergstroms-bygg"
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["Reply-To"] == "anna.lind@bergstromsbygg.se, support@example.se"
    summary, original = list(message.iter_parts())
    text = summary.get_content()
    assert f"Ärende:     {outcome.ticket}" in text
    assert "Kund:       Bergströms Bygg AB / Care (webb och applikationer)" in text
    assert "Prioritet:  Normal (default priority of policy care)" in text
    assert "Svar senast:" in text and "Saknas:     inget" in text
    assert original.get_content_type() == "message/rfc822"
    embedded_raw = team.raw[team.raw.index(b"Authentication-Results: mx1.example.se"):]
    assert raw.replace(b"\r\n", b"\n") in embedded_raw.replace(b"\r\n", b"\n")
    embedded = message_from_bytes(raw, policy=default)
    attachment = next(embedded.iter_attachments())
    assert attachment.get_content() == PNG


def test_private_and_unregistered_senders_are_flagged_for_the_team(
        sqlite_runtime: Runtime) -> None:
    receive(sqlite_runtime, support_mail(sender="kalle@hotmail.se", subject="Fråga"))
    receive(sqlite_runtime, support_mail(sender="praktikant@lindqvistlogistik.se",
                                         subject="Lager", body="Lagret visar fel saldo.\n"))
    with Session(sqlite_runtime.engine) as session:
        copies = [item.raw for item in filled(session, session.exec(
            select(Outbox).where(col(Outbox.purpose) == "team").order_by(col(Outbox.id))))]
    texts = [message_from_bytes(raw, policy=default) for raw in copies]
    summaries = [next(m.iter_parts()).get_content() for m in texts]
    assert "OBS: privat adress, inte en registrerad kontakt" in summaries[0]
    assert ("OBS: praktikant@lindqvistlogistik.se är inte en anmäld kontaktperson hos "
            "Lindqvist Logistik AB") in summaries[1]


def test_machine_mail_is_not_sent_to_the_team(sqlite_runtime: Runtime) -> None:
    outcome = receive(sqlite_runtime, support_mail(headers={"Auto-Submitted": "auto-replied"}))
    assert outcome.kind == "autoreply"
    with Session(sqlite_runtime.engine) as session:
        assert session.exec(select(Outbox)).all() == []


def test_a_team_reply_is_recorded_as_the_first_response(sqlite_runtime: Runtime) -> None:
    opened = receive(sqlite_runtime, support_mail())
    reply = support_mail(sender="Eva <eva@example.se>", to="anna.lind@bergstromsbygg.se",
                         subject=f"Re: [{opened.ticket}][Normal] Bokningssidan visar fel pris",
                         headers={"Cc": "support@example.se"}, body="Hej Anna, nu är det fixat.\n")
    outcome = receive(sqlite_runtime, reply)
    assert (outcome.kind, outcome.ticket) == ("followup", opened.ticket)
    decision = inbound(sqlite_runtime, outcome.inbound_id).decision
    assert decision is not None and decision["staff"] is True
    with Session(sqlite_runtime.engine) as session:
        ticket = session.exec(select(Ticket)).one()
        assert ticket.status == "answered"
        assert ticket.first_response_at is not None
        copies = session.exec(select(Outbox).where(col(Outbox.purpose) == "team")).all()
        assert len(copies) == 1, "the team's own reply is not sent back to the team"


def _close(runtime: Runtime, number: str, days_ago: int) -> None:
    from maild.models import utcnow
    from maild.tickets.lifecycle import set_status

    with Session(runtime.engine) as session:
        ticket = session.exec(select(Ticket).where(col(Ticket.number) == number)).one()
        set_status(session, ticket, "closed", actor="test", reason="löst",
                   at=utcnow() - timedelta(days=days_ago))
        session.commit()


def test_a_follow_up_reopens_a_recently_closed_ticket(sqlite_runtime: Runtime) -> None:
    opened = receive(sqlite_runtime, support_mail(message_id="<r1@bergstromsbygg.se>"))
    _close(sqlite_runtime, opened.ticket or "", days_ago=3)
    again = receive(sqlite_runtime, support_mail(subject="SV: Bokningssidan",
                                                 in_reply_to="<r1@bergstromsbygg.se>",
                                                 body="Felet är tillbaka.\n"))
    assert (again.kind, again.ticket) == ("followup", opened.ticket)
    with Session(sqlite_runtime.engine) as session:
        ticket = session.exec(select(Ticket)).one()
        assert ticket.status == "open" and ticket.closed_at is None
        reasons = [e.detail.get("reason") for e in session.exec(
            select(TicketEvent).where(col(TicketEvent.kind) == "status"))]
        assert "the customer wrote after the ticket was closed: reopened" in reasons


def test_after_the_window_a_follow_up_opens_a_new_ticket_that_refers_to_the_old(
        sqlite_runtime: Runtime) -> None:
    opened = receive(sqlite_runtime, support_mail(message_id="<r2@bergstromsbygg.se>"))
    _close(sqlite_runtime, opened.ticket or "", days_ago=30)
    again = receive(sqlite_runtime, support_mail(subject="SV: Bokningssidan",
                                                 in_reply_to="<r2@bergstromsbygg.se>",
                                                 body="Samma fel igen, en månad senare.\n"))
    assert again.kind == "new" and again.ticket != opened.ticket
    with Session(sqlite_runtime.engine) as session:
        new = session.exec(select(Ticket).where(col(Ticket.number) == again.ticket)).one()
        assert new.refers_to == opened.ticket


def test_the_team_commands_on_a_database_seeded_through_the_pipeline(maild: MaildCLI) -> None:
    assert maild("ingest", str(FIXTURES)).code == 0
    queues = {row["queue"]: row for row in json.loads(maild("queues", "--json").stdout)}
    assert queues["web"]["new"] + queues["web"]["waiting"] == 8
    # 14: the hyggeshop.dk reminder (40) cannot prove its sender, so it is a new ticket
    assert queues["triage"]["new"] + queues["triage"]["waiting"] == 14
    web = json.loads(maild("tickets", "--queue", "web", "--json").stdout)["tickets"]
    assert len(web) == 8 and all(row["queue"] == "web" for row in web)
    private = [row for row in json.loads(maild("tickets", "--json").stdout)["tickets"]
               if row["private"]]
    assert {row["customer"] for row in private} == {None, "bergstroms-bygg"}
    erp = json.loads(maild("tickets", "--customer", "lindqvist-logistik", "--sort", "priority",
                           "--json").stdout)["tickets"]
    assert [row["priority"] for row in erp] == sorted(row["priority"] for row in erp)
    waiting = json.loads(maild("tickets", "--status", "waiting-on-customer",
                               "--json").stdout)["tickets"]
    assert waiting and all(row["missing"] for row in waiting)
    number = web[0]["number"]
    assert maild("ticket", "assign", number, "eva@example.se", "--by", "Lisa").code == 0
    assert maild("ticket", "note", number, "Kunden ringd", "--by", "Lisa").code == 0
    assert maild("ticket", "close", number, "--reason", "Löst", "--by", "Lisa").code == 0
    assert maild("ticket", "close", number).code == 1, "closing twice is refused"
    assert maild("ticket", "reopen", number, "--by", "Lisa").code == 0
    shown = json.loads(maild("ticket", "show", number, "--json").stdout)
    events = shown["events"]
    assert events[0]["kind"] == "created"
    assert [(e["kind"], e["detail"].get("new")) for e in events[-3:]] == [
        ("note", None), ("status", "closed"), ("status", "open")]
    assert any(e["kind"] == "assigned" and e["detail"]["new"] == "eva@example.se"
               for e in events)
    assert [e["actor"] for e in shown["events"] if e["kind"] == "note"] == ["Lisa"]
    assert shown["assignee"] == "eva@example.se" and shown["status"] == "open"
    text = maild("ticket", "show", number)
    assert "events:" in text.stdout and "Kunden ringd" in text.stdout
    overdue = maild("tickets", "--overdue", "--json")
    assert overdue.code == 0 and isinstance(json.loads(overdue.stdout)["tickets"], list)
    help_text = maild("tickets", "--help").stdout
    assert "--overdue" in help_text and "deadline" in help_text
