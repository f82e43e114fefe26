"""Acknowledgements: RFC 3834 headers, both languages, no quoting, never to machines."""

from __future__ import annotations

import re

import pytest

from maild.runtime import Runtime
from tests.mailmaker import support_mail
from tests.pipeline_helpers import acks, inbound, receive, tickets


def test_acknowledgement_headers(sqlite_runtime: Runtime) -> None:
    outcome = receive(sqlite_runtime, support_mail(
        subject="SV: RE: Bokningssidan visar fel pris", message_id="<orig@bergstromsbygg.se>",
        references="<older@bergstromsbygg.se>"))
    [ack] = acks(sqlite_runtime)
    number = outcome.ticket
    assert ack["Subject"] == f"[{number}] Bokningssidan visar fel pris"
    assert ack["Auto-Submitted"] == "auto-replied"
    assert ack["X-Auto-Response-Suppress"] == "All"
    assert ack["X-Maild-Loop"] == "example.se"
    assert ack["In-Reply-To"] == "<orig@bergstromsbygg.se>"
    assert ack["References"] == "<older@bergstromsbygg.se> <orig@bergstromsbygg.se>"
    assert ack["Reply-To"] == "support@example.se"
    assert "support@example.se" in ack["From"]
    assert re.fullmatch(r"<maild\.[0-9a-f]{24}@example\.se>", ack["Message-ID"])


def test_swedish_acknowledgement_never_quotes_the_sender(sqlite_runtime: Runtime) -> None:
    body = "Klicka här för att vinna: http://phish.example/login\n"
    outcome = receive(sqlite_runtime, support_mail(body=body))
    [ack] = acks(sqlite_runtime)
    text = ack.get_content()
    assert f"registrerat det som ärende {outcome.ticket}" in text
    assert "Vänliga hälsningar" in text
    assert "phish.example" not in text
    assert "vinna" not in text
    assert ack["Content-Language"] == "sv"


def test_english_customer_gets_english(sqlite_runtime: Runtime) -> None:
    receive(sqlite_runtime, support_mail(
        sender="Tom Hughes <tom@nordicparcel.co.uk>", subject="Delivery reports missing",
        body="Hi, since this morning we get no delivery reports for our SMS. Regards, Tom\n"))
    [ack] = acks(sqlite_runtime)
    text = ack.get_content()
    assert "registered it as case" in text
    assert "Kind regards" in text
    assert ack["Content-Language"] == "en"


def test_unknown_sender_writing_english_gets_english(sqlite_runtime: Runtime) -> None:
    receive(sqlite_runtime, support_mail(
        sender="someone@unknown-company.com", subject="Question about your API",
        body="Hello, we would like to know if you have an API for sending SMS. Thanks!\n"))
    [ack] = acks(sqlite_runtime)
    assert ack["Content-Language"] == "en"
    assert tickets(sqlite_runtime)[0].queue == "triage"


def test_suspended_customer_hears_support_is_on_hold(sqlite_runtime: Runtime) -> None:
    receive(sqlite_runtime, support_mail(sender="Lars Ek <lars@fjallbygg.se>"))
    [ack] = acks(sqlite_runtime)
    assert "tillfälligt vilande" in ack.get_content()
    assert tickets(sqlite_runtime)[0].queue == "billing"


def test_header_injection_in_subject_yields_one_clean_header(sqlite_runtime: Runtime) -> None:
    raw = (b"From: Anna <anna.lind@bergstromsbygg.se>\r\nTo: support@example.se\r\n"
           b"Subject: =?utf-8?Q?Hej=0D=0ABcc:_victim@example.org?=\r\n"
           b"Message-ID: <inj@bergstromsbygg.se>\r\n\r\nHej, sidan laddar inte.\r\n")
    receive(sqlite_runtime, raw)
    [ack] = acks(sqlite_runtime)
    assert ack["Bcc"] is None
    assert "\n" not in ack["Subject"]


@pytest.mark.parametrize(("headers", "sender", "kind"), [
    ({"Auto-Submitted": "auto-replied"}, "anna.lind@bergstromsbygg.se", "autoreply"),
    ({"Auto-Submitted": "auto-generated"}, "anna.lind@bergstromsbygg.se", "autoreply"),
    ({}, "", "bounce"),
    ({}, "MAILER-DAEMON@mx.bergstromsbygg.se", "bounce"),
    ({"Precedence": "bulk"}, "anna.lind@bergstromsbygg.se", "list"),
    ({"X-Maild-Loop": "example.se"}, "anna.lind@bergstromsbygg.se", "loop"),
])
def test_machine_mail_is_stored_but_never_answered(sqlite_runtime: Runtime,
                                                   headers: dict[str, str], sender: str,
                                                   kind: str) -> None:
    outcome = receive(sqlite_runtime, support_mail(headers=headers), sender=sender)
    assert outcome.kind == kind
    assert outcome.ticket is None
    assert tickets(sqlite_runtime) == []
    assert acks(sqlite_runtime) == []
    row = inbound(sqlite_runtime, outcome.inbound_id)
    assert row.decision is not None
    assert row.decision["ack"] is False
    assert row.decision["signal"]


def test_postmaster_sender_and_multipart_report_are_not_answered(
        sqlite_runtime: Runtime) -> None:
    postmaster = support_mail(sender="postmaster@bergstromsbygg.se")
    report = (b"From: Mail Delivery System <mailer@mx.kund.se>\r\nTo: support@example.se\r\n"
              b"Subject: Undelivered Mail\r\nMIME-Version: 1.0\r\n"
              b'Content-Type: multipart/report; report-type=delivery-status; boundary="r"\r\n'
              b"\r\n--r\r\nContent-Type: text/plain\r\n\r\nfailed\r\n"
              b"--r\r\nContent-Type: message/delivery-status\r\n\r\n"
              b"Final-Recipient: rfc822; x@kund.se\r\nAction: failed\r\nStatus: 5.1.1\r\n"
              b"--r--\r\n")
    assert receive(sqlite_runtime, postmaster).kind == "bounce"
    assert receive(sqlite_runtime, report).kind == "bounce"
    assert acks(sqlite_runtime) == []


def test_auto_submitted_no_is_a_person(sqlite_runtime: Runtime) -> None:
    outcome = receive(sqlite_runtime, support_mail(headers={"Auto-Submitted": "no"}))
    assert outcome.kind == "new"
    assert len(acks(sqlite_runtime)) == 1


def test_non_ascii_subject_and_long_subject_decode_cleanly(sqlite_runtime: Runtime) -> None:
    subject = ("SV: Räksmörgås — en väldigt lång ämnesrad som fortsätter och fortsätter "
               "bortom sjuttioåtta tecken")
    outcome = receive(sqlite_runtime, support_mail(subject=subject))
    [ack] = acks(sqlite_runtime)
    assert ack["Subject"] == f"[{outcome.ticket}] {subject[4:]}"
    assert all(len(line) <= 78 for line in ack.as_string().splitlines()[:20])
