"""Who is entitled to what (issue 12): the agreements decide, not the code.

Each test quotes the agreement it enforces (../shared/seeds/), in Swedish and
in English, and follows the mail end to end: `maild route --json`, ingest,
`ticket show`, `sla report`, the acknowledgement and the team's copy.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import Session, col, select

from maild.commands.common import Context
from maild.commands.sla import sla_report
from maild.intake import store_inbound
from maild.models import Outbox, Ticket
from maild.routing.load import load_rules
from maild.runtime import Runtime, open_runtime
from maild.sla.monitor import run_monitor
from maild.sla.policy_clock import deadlines
from tests.conftest import RULES, MaildCLI, make_config
from tests.mailmaker import support_mail
from tests.pipeline_helpers import filled

LINDQVIST_DKIM = ("Authentication-Results: mx1.example.se; spf=softfail "
                  "smtp.mailfrom={sender}; dkim=pass header.d=lindqvistlogistik.se; "
                  "dmarc=none header.from=lindqvistlogistik.se\r\n"
                  "Received: from smtp.lindqvistlogistik.se by mx1.example.se (Postfix); "
                  "Mon, 16 Nov 2026 10:12:03 +0100\r\n")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text + "+01:00")


def rules_copy(tmp_path: Path, edits: dict[str, tuple[str, str]]) -> Path:
    """The shipped rules with `edits` (file: (old, new)) applied."""
    target = tmp_path / "rules"
    shutil.copytree(RULES, target)
    for name, (old, new) in edits.items():
        path = target / name
        text = path.read_text("utf-8")
        assert old in text, f"{name}: {old!r}"
        path.write_text(text.replace(old, new, 1), "utf-8")
    return target


@pytest.fixture
def shipped(tmp_path: Path) -> Iterator[Runtime]:
    runtime = open_runtime(make_config(tmp_path))
    yield runtime
    runtime.engine.dispose()


def arrive(runtime: Runtime, raw: bytes, received: str,
           to: str = "support@example.se") -> Ticket:
    """Store and process `raw` as received at Stockholm time `received`; its ticket."""
    stored = store_inbound(runtime.engine, raw, transport="smtp", received_at=at(received),
                           recipients=[to])
    outcome = runtime.processor().process_now(stored.inbound_id)
    assert outcome is not None and outcome.ticket is not None
    with Session(runtime.engine) as session:
        return session.exec(select(Ticket).where(col(Ticket.number) == outcome.ticket)).one()


def sent(runtime: Runtime, ticket: Ticket, purpose: str) -> list[EmailMessage]:
    with Session(runtime.engine) as session:
        items = session.exec(select(Outbox).where(col(Outbox.ticket_id) == ticket.id,
                                                  col(Outbox.purpose) == purpose)).all()
        return [message_from_bytes(item.raw, policy=default)  # type: ignore[misc]
                for item in filled(session, items)]


def text_of(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    return str(part.get_content())  # type: ignore[attr-defined]


def summary_of(team: EmailMessage) -> str:
    """The plain-text summary maild puts on top of the team's copy."""
    part = next(part for part in team.walk() if part.get_content_type() == "text/plain")
    return str(part.get_content())  # type: ignore[attr-defined]


def no_notifications(runtime: Runtime, ticket: Ticket) -> None:
    """Three days of monitor passes warn and escalate nothing for `ticket`."""
    for hours in (1, 4, 24, 72):
        run_monitor(runtime.engine, runtime.rules, ticket.created_at + timedelta(hours=hours),
                    "example.se")
    assert sent(runtime, ticket, "escalation") == []
    with Session(runtime.engine) as session:
        row = session.get(Ticket, ticket.id)
        assert row is not None
        assert (row.warned_at, row.escalated_at, row.response_breached_at) == (None, None, None)


# --- Suspended customers ----------------------------------------------------------------


def test_cloud_nine_may_refuse_a_customer_in_payment_default(shipped: Runtime) -> None:
    """Cloud Nine (seed 004): "Cloud Nine äger rätt neka tillgång till supporten för det fall
    KUNDEN är i betalningsdröjsmål" (may refuse support while the customer is in payment
    default). Fjällbygg is suspended: a ticket and the on-hold text, no deadline at all."""
    ticket = arrive(shipped, support_mail(
        sender="Göran Sjöberg <goran.sjoberg@fjallbygg.se>", subject="[High] Hemsidan är nere",
        body="Hej! Hemsidan ligger nere sedan i morse. Brådskande!\n"), "2026-11-24T10:00")
    assert (ticket.customer, ticket.queue, ticket.priority) == ("fjallbygg", "billing", "Normal")
    assert (ticket.response_due, ticket.resolution_due) == (None, None)
    assert ticket.decision is not None and ticket.decision["entitlement"]["status"] == "suspended"
    [ack] = sent(shipped, ticket, "ack")
    text = text_of(ack)
    assert "tillfälligt vilande" in text and "senast" not in text
    [team] = sent(shipped, ticket, "team")
    lines = summary_of(team)
    assert "Svar senast: inget åtagande" in lines and "vilande" in lines
    no_notifications(shipped, ticket)
    context = Context(shipped.config)
    context._runtime = shipped
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        sla_report(context, argparse.Namespace(month="2026-11", customer="fjallbygg",
                                               format="json", uptime=[]))
    [line] = json.loads(out.getvalue())["customers"]
    assert (line["tickets"], line["breaches"], line["no_commitment"]) == (1, 0, 1)
    assert (line["penalty_percent"], line["penalty_basis"]) == (None, "no commitment this month")


def test_softone_support_only_while_no_payment_is_overdue(tmp_path: Path,
                                                          maild: MaildCLI) -> None:
    """SoftOne (seed 001): "Kunden har rätt till SoftOne Service & Kvalitet så länge inga
    förfallna betalningar föreligger" (the customer is entitled to support as long as no
    payment is overdue). Through the real command: route, ingest, ticket show, sla report."""
    rules = rules_copy(tmp_path, {"customers/lindqvist-logistik.toml": (
        'status = "active"', 'status = "suspended"')})
    (maild.cwd / "rules").unlink()
    shutil.copytree(rules, maild.cwd / "rules")
    mail = maild.cwd / "p1.eml"
    sender = "per.olsson@lindqvistlogistik.se"
    mail.write_bytes(LINDQVIST_DKIM.format(sender=sender).encode() + support_mail(
        authenticated=False, sender=f"Per Olsson <{sender}>", subject="Prio 1: driftstopp",
        body="Systemet går inte att starta. Driftstopp för hela lagret.\n"))
    record = json.loads(maild("route", "--json", str(mail)).stdout)
    assert record["trust"]["trusted"] and record["trust"]["via"] == "dkim"
    assert record["entitlement"]["status"] == "suspended"
    assert (record["queue"], record["priority"], record["response_due"]) == (
        "billing", "P5", None)
    assert maild("ingest", str(mail)).code == 0
    [row] = json.loads(maild("tickets", "--json").stdout)["tickets"]
    shown = json.loads(maild("ticket", "show", row["number"], "--json").stdout)
    assert (shown["response_due"], shown["resolution_due"], shown["priority"]) == (
        None, None, "P5")
    text = maild("ticket", "show", row["number"]).stdout
    assert "response_due: none" in text
    later = (datetime.fromisoformat(shown["created_at"]) + timedelta(days=5)).isoformat()
    if "+" not in later[10:]:
        later += "+00:00"
    assert maild("sla", "check", "--now", later).stdout.startswith(
        "escalated 0, warned 0, response breaches 0")
    # The report's months are the policy's local calendar (Stockholm): in the last hours of
    # a month by UTC, the ticket is already in the next one there.
    created = datetime.fromisoformat(shown["created_at"])
    month = (created if created.tzinfo else created.replace(tzinfo=UTC)).astimezone(
        ZoneInfo("Europe/Stockholm")).strftime("%Y-%m")
    report = json.loads(maild("sla", "report", "--month", month, "--format", "json").stdout)
    [line] = [row for row in report["customers"] if row["customer"] == "lindqvist-logistik"]
    assert (line["customer"], line["breaches"], line["no_commitment"]) == (
        "lindqvist-logistik", 0, 1)
    assert line["penalty_percent"] is None


# --- No agreement -----------------------------------------------------------------------


def test_status_no_agreement_means_no_commitment(tmp_path: Path) -> None:
    """Cloud Nine (seed 004): customers without an agreement are helped "utan
    åtagande" (best effort, no committed response time), whatever contract file the
    customer points at."""
    rules = rules_copy(tmp_path, {"customers/kafe-lyktan.toml": (
        'policy = "no-agreement"', 'policy = "itil-p1-p4"')})
    runtime = open_runtime(make_config(tmp_path, rules_dir=rules))
    ticket = arrive(runtime, support_mail(sender="info@kafelyktan.se", subject="Driftstopp",
                                          body="Kassan ligger nere.\n"), "2026-11-24T10:00")
    assert (ticket.customer, ticket.priority, ticket.response_due) == ("kafe-lyktan", "P4", None)
    no_notifications(runtime, ticket)
    runtime.engine.dispose()


def test_rules_check_refuses_a_fee_reduction_for_a_customer_without_agreement(
        tmp_path: Path, maild: MaildCLI) -> None:
    rules = rules_copy(tmp_path, {"customers/kafe-lyktan.toml": (
        'policy = "no-agreement"', 'policy = "care"')})
    result = maild("rules", "check", str(rules))
    assert result.code == 78
    assert ("customer 'kafe-lyktan' has status no-agreement, but policy 'care' has a fee "
            "reduction it could not honour") in result.stderr


# --- Named contacts only ----------------------------------------------------------------


def test_softone_entitles_only_its_two_named_contacts(tmp_path: Path, maild: MaildCLI) -> None:
    """SoftOne (seed 001): "Som Kund har du rätt att utse två (2) kontaktpersoner som har
    rätt att kontakta SoftOne" (the customer names two contact persons who may contact
    SoftOne). A colleague at the same domain gets a registered case, a flag for the team
    and no commitment until staff entitle the ticket."""
    sender = "praktikant@lindqvistlogistik.se"
    mail = maild.cwd / "colleague.eml"
    mail.write_bytes(LINDQVIST_DKIM.format(sender=sender).encode() + support_mail(
        authenticated=False, sender=f"Praktikant <{sender}>", subject="Prio 1",
        body="Systemet går inte att starta, driftstopp.\n"))
    record = json.loads(maild("route", "--json", str(mail)).stdout)
    assert record["trust"]["trusted"] is True
    assert record["entitlement"]["status"] == "not-a-contact"
    assert (record["customer"], record["priority"], record["response_due"]) == (
        "lindqvist-logistik", "P5", None)
    assert record["priority_requested"] == "P1"
    assert maild("ingest", str(mail)).code == 0
    [row] = json.loads(maild("tickets", "--json").stdout)["tickets"]
    number = row["number"]
    outbox = json.loads(maild("outbox", "list", "--json").stdout)
    assert {item["purpose"] for item in outbox} >= {"ack", "team"}

    refused = maild("ticket", "entitle", number)
    assert refused.code != 0 and "--reason" in refused.stderr
    entitled = maild("ticket", "entitle", number, "--reason",
                     "Per Olsson bekräftade i telefon att praktikanten får anmäla", "--by",
                     "lisa")
    assert entitled.code == 0, entitled.stderr
    assert f"{number} entitled: priority P1" in entitled.stdout
    shown = json.loads(maild("ticket", "show", number, "--json").stdout)
    created = datetime.fromisoformat(shown["created_at"])
    office = load_rules(RULES).policies["office-p1-p5"]
    expected = deadlines(office, "P1", created).response
    assert expected is not None and shown["priority"] == "P1"
    assert datetime.fromisoformat(shown["response_due"]).timestamp() == expected.timestamp()
    [event] = [e for e in shown["events"] if e["kind"] == "entitled"]
    assert event["actor"] == "lisa" and event["detail"]["old_priority"] == "P5"
    assert "praktikanten" in event["detail"]["reason"]
    again = maild("ticket", "entitle", number, "--reason", "igen")
    assert again.code != 0 and "already has the agreement's commitment" in again.stderr
    missing = maild("ticket", "entitle", "MD-2026-99999-9", "--reason", "x")
    assert missing.code != 0 and "no ticket" in missing.stderr


def test_cloud_nine_entitles_its_approved_support_users(shipped: Runtime) -> None:
    """Cloud Nine (seed 004): "KUNDEN tillser att de personer som kontaktar supporten å
    KUNDENS vägnar är godkända av och anmälda av KUNDEN till Cloud Nine" (the people who
    contact support for the customer are approved and registered). Sanna is not."""
    ticket = arrive(shipped, support_mail(sender="Sanna Viklund <sanna.viklund@bergstromsbygg.se>",
                                          subject="[High] Bildspelet",
                                          body="Bildspelet fastnar.\n"), "2026-11-24T10:00")
    assert (ticket.customer, ticket.priority, ticket.response_due) == (
        "bergstroms-bygg", "Normal", None)
    [ack] = sent(shipped, ticket, "ack")
    text = text_of(ack)
    assert f"registrerat det som ärende {ticket.number}" in text
    assert "behörig kontaktperson" in text and "Bergströms" not in text
    [team] = sent(shipped, ticket, "team")
    assert "inte en anmäld kontaktperson hos Bergströms Bygg AB" in summary_of(team)
    assert f"maild ticket entitle {ticket.number}" in summary_of(team)
    no_notifications(shipped, ticket)
    # Anna is a registered contact: High, answered within two hours.
    anna = arrive(shipped, support_mail(subject="[High] Kassan", body="Kassan är nere.\n"),
                  "2026-11-24T10:05")
    assert (anna.priority, anna.response_due) == ("High", at("2026-11-24T12:05"))


def test_an_english_customer_is_told_in_english(tmp_path: Path) -> None:
    """The same rule for an English-speaking customer whose policy names its contacts."""
    rules = rules_copy(tmp_path, {
        "policies/around-the-clock.toml": ('required = ["description"]',
                                           'required = ["description"]\nentitled = "contacts"'),
        "customers/nordic-parcel.toml": ('status = "active"', 'status = "active"\n\n'
                                         '[[contact]]\naddress = "james.whitfield@nordicparcel'
                                         '.co.uk"\nname = "James Whitfield"')})
    runtime = open_runtime(make_config(tmp_path, rules_dir=rules))
    ticket = arrive(runtime, support_mail(sender="tom@nordicparcel.co.uk", subject="Outage",
                                          body="Our messages are not being delivered.\n"),
                    "2026-11-24T10:00")
    assert (ticket.priority, ticket.response_due) == ("non-urgent", None)
    text = text_of(sent(runtime, ticket, "ack")[0])
    assert "registered contact person for the customer" in text
    assert "first answer by" not in text
    runtime.engine.dispose()


# --- Private addresses ------------------------------------------------------------------


def test_cloud_nine_does_not_prioritise_private_addresses(shipped: Runtime) -> None:
    """Cloud Nine (seed 004): "Support som anmäls ifrån t.ex. privata adresser kommer inte
    att prioriteras" (cases reported from private addresses are not prioritised), and
    "Anmälan av Supportärenden ska även ske från en till kunden tillhörande företagsdomän"
    (cases must come from the customer's company domain). Johan is a registered contact,
    writing from Gmail with [High]: Normal, due the next weekday, not within 2 hours."""
    ticket = arrive(shipped, support_mail(
        sender="Johan Bergström <johan.bergstrom62@gmail.com>", subject="[High] Hemsidan",
        body="Hemsidan visar fel i mobilen.\n"), "2026-11-24T10:00")
    assert (ticket.customer, ticket.private, ticket.priority) == ("bergstroms-bygg", True,
                                                                  "Normal")
    care = shipped.rules.policies["care"]
    assert ticket.response_due == deadlines(care, "Normal", at("2026-11-24T10:00")).response
    assert ticket.response_due is not None and ticket.response_due > at("2026-11-24T12:00")
    assert ticket.decision is not None
    assert ticket.decision["entitlement"]["status"] == "private-address"
    assert "prioriteras inte" in summary_of(sent(shipped, ticket, "team")[0])
