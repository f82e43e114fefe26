"""Asking for exactly what is missing, and taking it when it comes."""

from __future__ import annotations

import base64
import json
from email.message import EmailMessage
from email.policy import SMTP

from sqlmodel import Session, col, select

from maild.models import Outbox, Ticket, TicketEvent
from maild.runtime import Runtime
from tests.conftest import FIXTURES, MaildCLI
from tests.mailmaker import authenticated_headers, support_mail
from tests.pipeline_helpers import acks, filled, inbound, receive

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==")


def _care_mail(body: str, *, subject: str = "Bokningssidan visar fel pris",
               in_reply_to: str | None = None, screenshot: bool = False) -> bytes:
    message = EmailMessage(policy=SMTP)
    for name, value in authenticated_headers("anna.lind@bergstromsbygg.se"):
        message[name] = value
    message["From"] = "Anna Lind <anna.lind@bergstromsbygg.se>"
    message["To"] = "support@example.se"
    message["Subject"] = subject
    message["Date"] = "Mon, 16 Nov 2026 10:12:00 +0100"
    message["Message-ID"] = f"<{abs(hash((body, subject)))}@bergstromsbygg.se>"
    if in_reply_to:
        message["In-Reply-To"] = in_reply_to
        message["References"] = in_reply_to
    message.set_content(body)
    if screenshot:
        message.add_attachment(PNG, maintype="image", subtype="png", filename="skarmbild.png")
    return message.as_bytes()


def test_the_acknowledgement_asks_for_what_the_care_policy_requires(
        sqlite_runtime: Runtime) -> None:
    outcome = receive(sqlite_runtime, _care_mail(
        "Hej!\n\nNär vi bokar ett rum på webbplatsen visas fel pris i kassan, beloppet blir "
        "dubbelt så stort som det ska vara.\n\nMvh Anna\n", subject="Fel pris i kassan"))
    decision = inbound(sqlite_runtime, outcome.inbound_id).decision
    assert decision is not None
    assert decision["missing"] == ["screenshot", "occurred_at", "browser", "os"]
    assert "description" in decision["evidence"]
    [ack] = acks(sqlite_runtime)
    text = ack.get_content()
    assert "För att vi ska kunna hjälpa dig så snabbt som möjligt behöver vi även:" in text
    for words in ("en skärmbild som visar felet", "vilken webbläsare och version du använder",
                  "vilket operativsystem och version du använder"):
        assert words in text
    with Session(sqlite_runtime.engine) as session:
        ticket = session.exec(select(Ticket)).one()
        assert ticket.status == "waiting-on-customer"
        assert ticket.missing == ["screenshot", "occurred_at", "browser", "os"]


def test_english_customers_are_asked_in_english(sqlite_runtime: Runtime) -> None:
    receive(sqlite_runtime, support_mail(
        sender="tom@nordicparcel.co.uk", subject="Question",
        body="Hi,\n\nok\n\nTom\n"))
    [ack] = acks(sqlite_runtime)
    assert "we also need" in ack.get_content()


def test_a_follow_up_supplies_items_until_nothing_is_missing(sqlite_runtime: Runtime) -> None:
    first = _care_mail("Hej!\n\nNär vi bokar ett rum på webbplatsen visas fel pris i kassan, "
                       "beloppet blir dubbelt så stort som det ska vara.\n\nMvh Anna\n",
                       subject="Fel pris i kassan")
    opened = receive(sqlite_runtime, first)
    original_id = inbound(sqlite_runtime, opened.inbound_id).message_id
    receive(sqlite_runtime, _care_mail(
        "Hej igen! Felet hände igår kl 14.30. Jag använder Chrome 131.\n\nMvh Anna\n",
        subject="SV: Fel pris i kassan", in_reply_to=f"<{original_id}>"))
    with Session(sqlite_runtime.engine) as session:
        ticket = session.exec(select(Ticket)).one()
        assert ticket.missing == ["screenshot", "os"]
        assert ticket.status == "waiting-on-customer"
    receive(sqlite_runtime, _care_mail(
        "Här kommer en skärmbild. Jag kör Windows 11.\n\nMvh Anna\n",
        subject="SV: Fel pris i kassan", in_reply_to=f"<{original_id}>", screenshot=True))
    with Session(sqlite_runtime.engine) as session:
        ticket = session.exec(select(Ticket)).one()
        assert ticket.missing == []
        assert ticket.status == "open"
        kinds = [e.kind for e in session.exec(select(TicketEvent).order_by(col(TicketEvent.id)))]
        assert kinds.count("supplied") == 2
        [confirmation] = filled(session, session.exec(select(Outbox).where(
            col(Outbox.purpose) == "confirmation")).all())
    assert b"Nu har vi allt vi beh" in confirmation.raw or b"allt vi beh=C3=B6ver" in \
        confirmation.raw
    assert b"Auto-Submitted: auto-replied" in confirmation.raw


def test_the_campaign_policy_asks_for_its_own_items(sqlite_runtime: Runtime) -> None:
    outcome = receive(sqlite_runtime, support_mail(
        sender="sara.ekstrom@smakbolaget.se", subject="Värdebevis",
        body=("Hej! Våra digitala värdebevis går inte att lösa in i butikernas kassor sedan "
              "i morse, kunderna får ett felmeddelande om ogiltig kod.\n")))
    decision = inbound(sqlite_runtime, outcome.inbound_id).decision
    assert decision is not None
    assert decision["missing"] == ["company", "contact_name_title", "contact_details",
                                   "campaign_number"]


def test_check_info_command(maild: MaildCLI) -> None:
    fixture = next(FIXTURES.glob("09-*.eml"))
    text = maild("check-info", str(fixture), "--items",
                 "screenshot,browser,os,occurred_at,description")
    assert text.code == 0
    assert "browser              present  (Safari 17)" in text.stdout
    assert "os                   present  (macOS 14 Sonoma)" in text.stdout
    data = json.loads(maild("check-info", str(next(FIXTURES.glob("16-*.eml"))),
                            "--policy", "care", "--json").stdout)
    assert {row["item"]: row["present"] for row in data} == {
        "description": True, "screenshot": False, "occurred_at": False, "browser": False,
        "os": False}
    bad = maild("check-info", str(fixture), "--items", "horoscope")
    assert bad.code == 1 and "unknown item horoscope" in bad.stderr
