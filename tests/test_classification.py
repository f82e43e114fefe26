"""Machine-mail classification: every real-world message of the corpus, and each signal family.

The corpus manifest (`tests/corpus/manifest.tsv`) says what each message
is; `classify_machine` must agree on every one. The focused tests below use
small hand-written messages for each signal, for the mail of people that
looks a little like machine mail, and for the order in which signals win.
"""

from __future__ import annotations

import csv
from collections import Counter
from email.message import EmailMessage
from email.policy import SMTP
from functools import cache

import pytest

from maild.classify.machine import MachineVerdict, classify_machine
from maild.commands.intake import envelope_sender_of
from maild.parse import ParsedMail, parse_mail
from tests.conftest import CORPUS

MANIFEST = CORPUS / "manifest.tsv"
OWN_DOMAINS = frozenset({"example.se"})
OWN_ADDRESSES = frozenset({"support@example.se", "faktura@example.se"})


def _manifest() -> list[tuple[str, str]]:
    if not MANIFEST.is_file():
        return []
    with MANIFEST.open(encoding="utf-8", newline="") as handle:
        return [(row["file"], row["expected_kind"])
                for row in csv.DictReader(handle, delimiter="\t")]


ROWS = _manifest()


@cache
def _corpus_kind(name: str) -> tuple[str, str]:
    """The kind maild gives corpus file `name` ("human" for a person) and the signal."""
    raw = (CORPUS / name).read_bytes()
    verdict = classify_machine(parse_mail(raw), envelope_sender_of(raw))
    return (verdict.kind, verdict.signal) if verdict else ("human", "")


@pytest.mark.parametrize(("name", "expected"), ROWS, ids=[name for name, _ in ROWS])
def test_corpus_message_gets_its_expected_kind(name: str, expected: str) -> None:
    kind, signal = _corpus_kind(name)
    assert kind == expected, f"{name}: {kind} ({signal or 'no machine-mail signal'})"


def test_corpus_summary_is_complete() -> None:
    assert ROWS, f"no manifest at {MANIFEST}"
    total: Counter[str] = Counter()
    correct: Counter[str] = Counter()
    for name, expected in ROWS:
        total[expected] += 1
        correct[expected] += _corpus_kind(name)[0] == expected
    lines = [f"{'kind':<10} {'total':>6} {'correct':>8}"]
    lines += [f"{kind:<10} {total[kind]:>6} {correct[kind]:>8}" for kind in sorted(total)]
    lines.append(f"{'all':<10} {sum(total.values()):>6} {sum(correct.values()):>8}")
    table = "\n".join(lines)
    print(f"\n{table}")
    assert correct == total, table


# --- hand-written messages -------------------------------------------------------------


def _mail(*, sender: str | None = "Anna Lind <anna.lind@bergstromsbygg.se>",
          subject: str = "Bokningssidan visar fel pris",
          body: str = "Hej!\n\nBokningssidan visar fel pris sedan i morse.\n\nAnna\n",
          headers: dict[str, str] | None = None) -> ParsedMail:
    message = EmailMessage(policy=SMTP)
    if sender is not None:
        message["From"] = sender
    message["To"] = "support@example.se"
    message["Subject"] = subject
    message["Date"] = "Mon, 16 Nov 2026 10:12:00 +0100"
    message["Message-ID"] = "<person.1@bergstromsbygg.se>"
    for name, value in (headers or {}).items():
        message[name] = value
    message.set_content(body)
    return parse_mail(message.as_bytes())


def _classify(mail: ParsedMail, envelope_sender: str | None = None) -> MachineVerdict | None:
    return classify_machine(mail, envelope_sender, OWN_DOMAINS, OWN_ADDRESSES)


def _kind(mail: ParsedMail, envelope_sender: str | None = None) -> str:
    verdict = _classify(mail, envelope_sender)
    return verdict.kind if verdict else "person"


def _report(report_type: str, fields: str, *, sender: str = "MAILER-DAEMON@mx.kund.se",
            extra_headers: str = "") -> ParsedMail:
    """A multipart/report with a human-readable part and a machine-readable one."""
    part_type = {"delivery-status": "message/delivery-status",
                 "feedback-report": "message/feedback-report"}[report_type]
    raw = (f"From: {sender}\r\nTo: support@example.se\r\nSubject: Report\r\n{extra_headers}"
           "MIME-Version: 1.0\r\n"
           f'Content-Type: multipart/report; report-type={report_type}; boundary="r"\r\n\r\n'
           "--r\r\nContent-Type: text/plain\r\n\r\nA report.\r\n"
           f"--r\r\nContent-Type: {part_type}\r\n\r\n{fields}\r\n--r--\r\n")
    return parse_mail(raw.encode())


DSN_FIELDS = ("Reporting-MTA: dns; mx.kund.se\r\n\r\nFinal-Recipient: rfc822; x@kund.se\r\n"
              "Action: failed\r\nStatus: 5.1.1\r\n")
ARF_FIELDS = ("Feedback-Type: abuse\r\nUser-Agent: SomeGenerator/1.0\r\nVersion: 1\r\n"
              "Original-Mail-From: <support@example.se>\r\nArrival-Date: Mon, 16 Nov 2026\r\n")


# --- loop --------------------------------------------------------------------------------


def test_loop_header_is_maild_coming_back() -> None:
    mail = _mail(headers={"X-Maild-Loop": "example.se", "Auto-Submitted": "auto-replied"})
    verdict = _classify(mail)
    assert verdict is not None
    assert verdict.kind == "loop"
    assert "X-Maild-Loop" in verdict.signal


def test_own_message_id_under_own_domain_is_a_loop() -> None:
    raw = (b"From: someone@kund.se\r\nTo: support@example.se\r\nSubject: x\r\n"
           b"Message-ID: <maild.3e8c41a04f6e0b1c2d3e4f50@example.se>\r\n\r\nbody\r\n")
    verdict = _classify(parse_mail(raw))
    assert verdict is not None
    assert verdict.kind == "loop"
    assert "Message-ID" in verdict.signal


def test_maild_form_under_someone_elses_domain_is_not_a_loop() -> None:
    raw = (b"From: Anna <anna.lind@bergstromsbygg.se>\r\nTo: support@example.se\r\n"
           b"Subject: x\r\nMessage-ID: <maild.3e8c41a04f6e@bergstromsbygg.se>\r\n\r\nHej\r\n")
    assert _classify(parse_mail(raw)) is None


def test_own_address_as_sender_is_a_loop() -> None:
    verdict = _classify(_mail(sender="Support <Support@Example.se>"))
    assert verdict is not None
    assert verdict.kind == "loop"
    assert "support@example.se" in verdict.signal


def test_a_reply_to_an_acknowledgement_is_a_person() -> None:
    mail = _mail(subject="Re: [MD-2026-00042-8] Bokningssidan",
                 headers={"In-Reply-To": "<maild.3e8c41a04f6e0b1c2d3e4f50@example.se>"})
    assert _classify(mail) is None


# --- complaints ----------------------------------------------------------------------------


def test_arf_report_is_a_complaint() -> None:
    verdict = _classify(_report("feedback-report", ARF_FIELDS, sender="fbl@isp.example"))
    assert verdict is not None
    assert verdict.kind == "complaint"
    assert "feedback-report" in verdict.signal


def test_complaint_from_a_daemon_is_still_a_complaint() -> None:
    mail = _report("feedback-report", ARF_FIELDS, sender="MAILER-DAEMON@isp.example",
                   extra_headers="Auto-Submitted: auto-generated\r\n")
    assert _kind(mail, envelope_sender="") == "complaint"


def test_arf_without_a_boundary_is_still_a_complaint() -> None:
    raw = (b"From: fbl@isp.example\r\nTo: support@example.se\r\nSubject: FW: report\r\n"
           b"MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=feedback-report\r\n"
           b"\r\nFeedback-Type: abuse\r\n")
    assert _kind(parse_mail(raw)) == "complaint"


def test_feedback_report_part_in_a_mixed_message_is_a_complaint() -> None:
    raw = (b"From: abuse@isp.example\r\nTo: support@example.se\r\nSubject: Spam report\r\n"
           b'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n'
           b"--b\r\nContent-Type: text/plain\r\n\r\nSee the report.\r\n"
           b"--b\r\nContent-Type: message/feedback-report\r\n"
           b'Content-Disposition: attachment; filename="report.txt"\r\n\r\n'
           + ARF_FIELDS.encode() + b"--b--\r\n")
    verdict = _classify(parse_mail(raw))
    assert verdict is not None
    assert verdict.kind == "complaint"
    assert "message/feedback-report" in verdict.signal


def test_person_pasting_a_report_to_ask_about_it_is_a_person() -> None:
    mail = _mail(subject="Klagomål från Yahoo?",
                 body="Hej, vi fick detta, vad betyder det?\n\n" + ARF_FIELDS.replace("\r\n", "\n"))
    assert _classify(mail) is None


def test_person_forwarding_a_report_to_ask_about_it_is_a_person() -> None:
    mail = _mail(subject="Fwd: Abuse report",
                 body="Hej, vad betyder detta?\n\n" + ARF_FIELDS.replace("\r\n", "\n"))
    assert _classify(mail) is None


def test_microsoft_jmrp_complaint() -> None:
    mail = _mail(sender="staff@hotmail.com", subject="complaint about message from 192.0.2.1",
                 body="Nyaan\n")
    verdict = _classify(mail)
    assert verdict is not None
    assert verdict.kind == "complaint"
    assert "Junk Mail Reporting Program" in verdict.signal


# --- bounces ------------------------------------------------------------------------------


def test_rfc3464_report_is_a_bounce_even_with_auto_submitted() -> None:
    mail = _report("delivery-status", DSN_FIELDS,
                   extra_headers="Auto-Submitted: auto-replied\r\n")
    verdict = _classify(mail, envelope_sender="")
    assert verdict is not None
    assert verdict.kind == "bounce"
    assert "report-type=delivery-status" in verdict.signal


def test_read_receipt_is_machine_mail() -> None:
    raw = (b"From: Anna <anna.lind@bergstromsbygg.se>\r\nTo: support@example.se\r\n"
           b"Subject: Read: x\r\nMIME-Version: 1.0\r\nContent-Type: multipart/report; "
           b'report-type=disposition-notification; boundary="r"\r\n\r\n--r\r\n'
           b"Content-Type: text/plain\r\n\r\nRead.\r\n--r--\r\n")
    verdict = _classify(parse_mail(raw))
    assert verdict is not None
    assert verdict.kind == "bounce"
    assert "read receipt" in verdict.signal


def test_delivery_status_part_named_as_attachment_is_a_bounce() -> None:
    raw = (b"From: Gateway <gw@kund.se>\r\nTo: support@example.se\r\nSubject: Status\r\n"
           b'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n'
           b"--b\r\nContent-Type: text/plain\r\n\r\nSee attachment.\r\n"
           b"--b\r\nContent-Type: message/delivery-status\r\n"
           b'Content-Disposition: attachment; filename="details.txt"\r\n\r\n'
           + DSN_FIELDS.encode() + b"--b--\r\n")
    verdict = _classify(parse_mail(raw))
    assert verdict is not None
    assert verdict.kind == "bounce"
    assert "message/delivery-status" in verdict.signal


@pytest.mark.parametrize(("header", "words"), [
    ("X-Failed-Recipients", "X-Failed-Recipients"),
    ("X-MS-Exchange-Message-Is-Ndr", "Exchange"),
])
def test_vendor_bounce_headers(header: str, words: str) -> None:
    mail = _mail(sender="Microsoft Outlook <relay@kund.se>", subject="Undeliverable: x",
                 headers={header: "x@kund.se", "Auto-Submitted": "auto-replied"})
    verdict = _classify(mail)
    assert verdict is not None
    assert verdict.kind == "bounce"
    assert words in verdict.signal


@pytest.mark.parametrize("sender", [
    "MAILER-DAEMON@mx.kund.se", "Mailer_Daemon@mx.kund.se", "postmaster@kund.se",
    "post_master@kund.se", "Mail Delivery System <mailer-daemon@kund.se>",
])
def test_mail_system_sender_is_a_bounce(sender: str) -> None:
    verdict = _classify(_mail(sender=sender, subject="Re: Test message", body="Error\n"))
    assert verdict is not None
    assert verdict.kind == "bounce"
    assert "mail-system account" in verdict.signal


def test_envelope_sender_mailer_daemon_without_domain_is_a_bounce() -> None:
    assert _kind(_mail(sender="Postmaster Robot <robot@kund.se>"), "MAILER-DAEMON") == "bounce"


@pytest.mark.parametrize(("system", "opening"), [
    ("qmail", "Hi. This is the qmail-send program at mx.kund.se.\nI'm afraid I wasn't able"),
    ("Postfix", "This is the mail system at host mx.kund.se.\n\nI'm sorry to have to inform"),
    ("Exim", "This message was created automatically by mail delivery software.\n\nA message"),
    ("Sendmail", "The original message was received at Mon, 16 Nov 2026 10:12:00 +0100\n"),
    ("Exchange", "Delivery has failed to these recipients or groups:\n\nx@kund.se"),
    ("Gmail", "** Address not found **\n\nYour message wasn't delivered to x@kund.se"),
])
def test_mail_system_bounce_text_at_the_top_is_a_bounce(system: str, opening: str) -> None:
    mail = _mail(sender="relay@mx.kund.se", subject="Notice", body=f"{opening}\n\nmore\n")
    verdict = _classify(mail)
    assert verdict is not None
    assert verdict.kind == "bounce"
    assert system in verdict.signal


def test_postfix_text_bounce_with_null_sender_and_auto_submitted_is_a_bounce() -> None:
    mail = _mail(sender="Mail Delivery System <system@mx.kund.se>",
                 subject="Undelivered Mail Returned to Sender",
                 headers={"Auto-Submitted": "auto-replied"},
                 body="I'm sorry to have to inform you that your message could not\n"
                      "be delivered to one or more recipients.\n")
    assert _kind(mail, envelope_sender="") == "bounce"


@pytest.mark.parametrize(("sender", "subject"), [
    ("no-reply@carrier.example", "Mail delivery failed"),
    ("noreply@carrier.example", "Undeliverable: Offert"),
    ("Mail Delivery Subsystem <gateway@carrier.example>", "Returned mail: User unknown"),
    (None, "failure notice"),
    ("do-not-reply@carrier.example", "Olevererbart: Faktura"),
    ("no-reply@carrier.example", "Unzustellbar: Angebot"),
])
def test_bounce_subject_from_a_mail_system_is_a_bounce(sender: str | None, subject: str) -> None:
    verdict = _classify(_mail(sender=sender, subject=subject, body="Details follow.\n"))
    assert verdict is not None
    assert verdict.kind == "bounce"
    assert "bounce subject" in verdict.signal


def test_failure_text_from_no_reply_is_a_bounce() -> None:
    mail = _mail(sender="no-reply@carrier.example", subject="メールエラー通知",
                 body="Your mail sent on: Mon, 16 Nov 2026\n Could not be delivered to: "
                      "<x@carrier.example>\n As their mailbox is full.\n")
    assert _kind(mail) == "bounce"


def test_amazon_ses_notification_is_a_bounce() -> None:
    mail = _mail(sender="SES <no-reply@sns.amazonaws.com>", subject="AWS Notification Message",
                 headers={"x-amz-sns-message-id": "ad6bdf42-f483-5bae-bf50-8fc1aad3f981"},
                 body='{"notificationType":"Bounce","bounce":{"bounceType":"Permanent"}}\n')
    verdict = _classify(mail)
    assert verdict is not None
    assert verdict.kind == "bounce"
    assert "Amazon SES Bounce" in verdict.signal


def test_json_about_notifications_from_a_person_is_a_person() -> None:
    mail = _mail(subject="Webhook payload question",
                 body='{"notificationType":"Bounce"} is what we get, is that right?\n')
    assert _classify(mail) is None


def test_mailing_list_manager_notice_is_a_bounce() -> None:
    mail = _mail(sender="neko-admin@lists.kund.se",
                 subject="Loop Alert: Duplicated Message-ID (neko ML)",
                 headers={"X-MLServer": "fml [fml 4.0.3 release]"},
                 body="Duplicated Message-ID.\n\nOriginal mail as follows:\n\n  From: x\n")
    verdict = _classify(mail)
    assert verdict is not None
    assert verdict.kind == "bounce"
    assert "mailing-list manager" in verdict.signal


def test_null_sender_without_other_signals_is_a_bounce() -> None:
    verdict = _classify(_mail(), envelope_sender="")
    assert verdict is not None
    assert verdict.kind == "bounce"
    assert "null envelope sender" in verdict.signal


# --- people who write about delivery problems -------------------------------------------


@pytest.mark.parametrize("subject", [
    "Undelivered SMS to our customers",
    "URGENT: SMS messages not being delivered",
    "Delivery failure when we send to Gmail",
    "Returned mail from your server?",
    "Question: delivery receipt webhooks and retries",
    "Meddelandet kunde inte levereras",
])
def test_person_writing_about_delivery_problems_is_a_person(subject: str) -> None:
    body = ("Hi,\n\nour customers get this:\n\n550 5.1.1 User unknown: could not be delivered\n"
            "\nPlease help.\nPriya\n")
    assert _classify(_mail(sender="Priya Raman <priya.raman@nordicparcel.co.uk>",
                           subject=subject, body=body)) is None


def test_person_forwarding_a_bounce_is_a_person() -> None:
    body = ("---------- Forwarded message ---------\nFrom: Mail Delivery System "
            "<MAILER-DAEMON@mx.kund.se>\n\nThis is the mail system at host mx.kund.se.\n")
    mail = _mail(subject="Fwd: Undelivered Mail Returned to Sender", body=body)
    assert _classify(mail) is None


def test_person_pasting_bounce_text_under_a_forward_subject_is_a_person() -> None:
    mail = _mail(subject="VB: failure notice",
                 body="Hi. This is the qmail-send program at mx.kund.se.\nI'm afraid...\n")
    assert _classify(mail) is None


def test_web_form_sent_as_no_reply_for_a_person_is_a_person() -> None:
    mail = _mail(sender="Webbplatsen <noreply@bergstromsbygg.se>",
                 subject="Kontaktformulär: leverans misslyckades",
                 headers={"Reply-To": "Kund <kund@gmail.com>"},
                 body="Min beställning could not be delivered, vad händer?\n")
    assert _classify(mail) is None


# --- auto-replies -------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["auto-replied", "auto-generated", "auto-notified",
                                   "Auto-Replied (vacation)", "auto-replied; owner-email=x@y"])
def test_auto_submitted_other_than_no_is_an_autoreply(value: str) -> None:
    verdict = _classify(_mail(subject="Away until May 5", headers={"Auto-Submitted": value}))
    assert verdict is not None
    assert verdict.kind == "autoreply"
    assert "Auto-Submitted" in verdict.signal


@pytest.mark.parametrize("value", ["no", "No", "no (written by a person)"])
def test_auto_submitted_no_is_a_person(value: str) -> None:
    assert _classify(_mail(headers={"Auto-Submitted": value})) is None


def test_null_sender_auto_reply_is_an_autoreply_not_a_bounce() -> None:
    # RFC 3834 section 3.3 asks auto-responders to use the null envelope sender.
    mail = _mail(sender="karl@kund.se", subject="kitununulinitoquekegu",
                 headers={"Auto-Submitted": "auto-replied"}, body="zukünftig karl@hanz.de\n")
    assert _kind(mail, envelope_sender="") == "autoreply"


@pytest.mark.parametrize(("header", "value"), [
    ("X-Autoreply", "yes"), ("X-Autorespond", "Vacation"), ("X-Autoresponder", ""),
    ("Precedence", "auto_reply"), ("Precedence", "junk"), ("X-Apple-Action", "VACATION"),
])
def test_autoreply_headers(header: str, value: str) -> None:
    verdict = _classify(_mail(subject="Nyaan", headers={header: value}))
    assert verdict is not None
    assert verdict.kind == "autoreply"
    assert header in verdict.signal


def test_exchange_rule_reply_of_the_sender_is_an_autoreply() -> None:
    mail = _mail(sender="James <james.whitfield@nordicparcel.co.uk>",
                 subject="RE: URGENT: SMS messages not being delivered",
                 headers={"X-MS-Exchange-Inbox-Rules-Loop": "james.whitfield@nordicparcel.co.uk"})
    verdict = _classify(mail)
    assert verdict is not None
    assert verdict.kind == "autoreply"
    assert "X-MS-Exchange-Inbox-Rules-Loop" in verdict.signal


def test_exchange_redirect_of_someone_elses_mail_is_a_person() -> None:
    mail = _mail(sender="Anna Lind <anna.lind@bergstromsbygg.se>",
                 headers={"X-MS-Exchange-Inbox-Rules-Loop": "info@bergstromsbygg.se"})
    assert _classify(mail) is None


def test_exchange_forward_rule_carries_a_persons_text() -> None:
    mail = _mail(sender="Anna Lind <anna.lind@bergstromsbygg.se>", subject="VB: Larm i portalen",
                 headers={"X-MS-Exchange-Inbox-Rules-Loop": "anna.lind@bergstromsbygg.se"})
    assert _classify(mail) is None


@pytest.mark.parametrize("subject", [
    "Automatiskt svar: SV: Felaktigt antal licenser",
    "Autosvar: Bokningssidan",
    "Frånvaromeddelande",
    "Out of Office: URGENT: SMS",
    "Out of Office AutoReply: Offert",
    "Automatic reply: RE: URGENT: SMS messages not being delivered",
    "Auto reply: Nyaan",
    "Auto-Reply: your message",
    "[Auto-Reply] your message",
    "Automatische Antwort: Angebot",
    "Abwesenheitsnotiz: Angebot",
    "Automatisk svar: Tilbud",
    "Fraværsmelding",
    "Automaattinen vastaus: Tarjous",
    "Réponse automatique : Devis",
])
def test_localised_autoreply_subjects(subject: str) -> None:
    verdict = _classify(_mail(sender="Maria Holm <maria.holm@lindqvistlogistik.se>",
                              subject=subject, body="Jag är ledig till måndag.\n"))
    assert verdict is not None
    assert verdict.kind == "autoreply"
    assert "auto-reply subject" in verdict.signal


@pytest.mark.parametrize("subject", [
    "Autosvar fungerar inte i Outlook",
    "Out of office hours support for the SMS gateway",
    "SV: Automatiskt svar: Felaktigt antal licenser",
    "Re: Out of Office: URGENT",
    "Fråga om frånvarohantering i portalen",
])
def test_people_mentioning_autoreplies_are_people(subject: str) -> None:
    assert _classify(_mail(subject=subject)) is None


def test_lone_x_auto_response_suppress_is_a_person() -> None:
    # Outlook sets it on meeting requests and responses that people send.
    mail = _mail(subject="Accepted: Genomgång av kampanj 48213",
                 headers={"X-Auto-Response-Suppress": "RN, NRN, OOF, AutoReply",
                          "X-MS-Has-Attach": "", "X-MS-TNEF-Correlator": ""})
    assert _classify(mail) is None


def test_x_auto_response_suppress_with_out_of_office_wording_is_an_autoreply() -> None:
    mail = _mail(subject="I am out of office until Monday",
                 headers={"X-Auto-Response-Suppress": "All"})
    verdict = _classify(mail)
    assert verdict is not None
    assert verdict.kind == "autoreply"
    assert "X-Auto-Response-Suppress" in verdict.signal


def test_outlook_person_mail_is_a_person() -> None:
    mail = _mail(sender="Anna Lind <anna.lind@bergstromsbygg.se>",
                 subject="Bokningsappen ger fel vid bekräftelse",
                 headers={"X-MS-Has-Attach": "yes", "X-MS-TNEF-Correlator": "",
                          "Thread-Topic": "Bokningsappen", "X-MS-Exchange-Organization-SCL": "1",
                          "x-ms-publictraffictype": "Email", "X-Mailer": "Microsoft Outlook 16.0"})
    assert _classify(mail) is None


# --- list traffic ------------------------------------------------------------------------


@pytest.mark.parametrize(("header", "value"), [
    ("List-Id", "Cats <cats.lists.kund.se>"),
    ("List-Unsubscribe", "<mailto:leave@lists.kund.se>"),
    ("Precedence", "bulk"),
    ("Precedence", "list"),
])
def test_list_traffic(header: str, value: str) -> None:
    verdict = _classify(_mail(headers={header: value}))
    assert verdict is not None
    assert verdict.kind == "list"
    assert header in verdict.signal


def test_out_of_office_to_a_list_is_an_autoreply() -> None:
    mail = _mail(subject="Automatic reply: [cats] meeting",
                 headers={"Auto-Submitted": "auto-replied", "List-Id": "<cats.lists.kund.se>"})
    assert _kind(mail) == "autoreply"


def test_bounce_from_a_list_server_is_a_bounce() -> None:
    mail = _report("delivery-status", DSN_FIELDS,
                   extra_headers="List-Id: <cats.lists.kund.se>\r\nPrecedence: list\r\n")
    assert _kind(mail) == "bounce"



# --- nobody@ and bounce@ are local parts, not evidence ----------------------------------

WEB_FORM_BODY = ("Namn: Anna Lind\nE-post: anna.lind@bergstromsbygg.se\n\nMeddelande:\n"
                 "Hej! Bokningssidan visar fel pris sedan i morse, kan ni titta på det?\n")


@pytest.mark.parametrize("envelope", ["nobody@www.bergstromsbygg.se", "bounce@bergstromsbygg.se",
                                      "bounces@mailer.bergstromsbygg.se", "Nobody@web01"])
def test_a_web_form_mail_from_a_nobody_or_bounce_envelope_is_a_person(envelope: str) -> None:
    mail = _mail(subject="Kontaktformulär: bokningen", body=WEB_FORM_BODY)
    assert _kind(mail, envelope) == "person"


@pytest.mark.parametrize("sender", ["Webbformulär <nobody@www.bergstromsbygg.se>",
                                    "bounce@bergstromsbygg.se"])
def test_a_web_form_sent_as_nobody_for_the_person_in_reply_to_is_a_person(sender: str) -> None:
    mail = _mail(sender=sender, subject="Kontaktformulär: bokningen", body=WEB_FORM_BODY,
                 headers={"Reply-To": "Anna Lind <anna.lind@bergstromsbygg.se>"})
    assert _kind(mail, sender.rpartition("<")[2].strip(">")) == "person"


@pytest.mark.parametrize("sender", ["nobody@mx.kund.se", "bounce@mx.kund.se"])
def test_nobody_or_bounce_with_a_bounce_subject_is_still_a_bounce(sender: str) -> None:
    mail = _mail(sender=sender, subject="Undeliverable: Offert", body="Details follow.\n")
    verdict = _classify(mail, sender)
    assert verdict is not None and verdict.kind == "bounce"
    assert "bounce subject" in verdict.signal


# --- gateway notices without a report -----------------------------------------------------


@pytest.mark.parametrize(("sender", "subject", "body"), [
    ("Mailer_Daemon+bounces@mx.kund.se", "Notice", "Your message to x@kund.se could not be "
                                                   "delivered.\n"),
    ("<postmaster%mx.kund.se@relay.kund.se>", "Hello", "Message delivery has been delayed.\n"),
    ("Microsoft Outlook <MicrosoftExchange329e71ec88ae4615bbc36ab6ce41109e@kund.se>",
     "Fördröjd leverans: Offert", "Leveransen har fördröjts till följande mottagare:\n"),
    ("Virenschutz <gateway@fw.kund.de>", "Hinweis", "Ihre Nachricht konnte nicht zugestellt "
                                                   "werden, da ein Virus gefunden wurde.\n"),
])
def test_gateway_notice_from_a_role_sender_is_a_bounce(sender: str, subject: str,
                                                       body: str) -> None:
    verdict = _classify(_mail(sender=sender, subject=subject, body=body))
    assert verdict is not None
    assert verdict.kind == "bounce"


def test_notice_opening_with_failure_and_returned_headers_is_a_bounce() -> None:
    body = ("The message that you sent was undeliverable to the following:\n\tx@kund.se\n\n"
            "Received: from mx.example.se\nMessage-ID: <a@example.se>\nFrom: support@example.se\n"
            "Subject: [MD-1] Tack\n")
    verdict = _classify(_mail(sender="Karin Ek <karin.ek@kund.se>", subject="Notice", body=body))
    assert verdict is not None
    assert verdict.kind == "bounce"
    assert "opens with a delivery-failure sentence" in verdict.signal


@pytest.mark.parametrize(("sender", "subject", "body"), [
    ("Anna Lind <anna.lind@bergstromsbygg.se>", "Olevererbart: offert",
     "Hej! Vi får 'Ditt meddelande nådde inte några eller alla mottagare' hela tiden.\n"),
    ("Anna Lind <anna.lind@bergstromsbygg.se>", "Frågor om våra rubriker",
     "Hej, här är rubrikerna:\nReceived: from x\nMessage-ID: <a@b>\nFrom: a@b\n"),
    ("IT <gateway@bergstromsbygg.se>", "VB: Undeliverable: offert",
     "Your message could not be delivered.\n"),
])
def test_people_writing_like_gateways_are_people(sender: str, subject: str, body: str) -> None:
    assert _classify(_mail(sender=sender, subject=subject, body=body)) is None
