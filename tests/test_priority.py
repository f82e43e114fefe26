"""The priority each seed policy defines, and who is never prioritised."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from maild.envelope import Envelope, identity_of
from maild.models import utcnow
from maild.parse import parse_mail
from maild.pipeline import decide
from maild.routing.load import load_rules
from maild.routing.model import Rules
from maild.runtime import Runtime
from maild.sla.monitor import run_monitor
from maild.tickets.correlate import NoTickets
from maild.tickets.numbering import TicketNumbering
from tests.conftest import RULES
from tests.mailmaker import support_mail
from tests.pipeline_helpers import receive

SHIPPED = load_rules(RULES)


def decision(raw: bytes, rules: Rules = SHIPPED) -> dict[str, Any]:
    return decide(parse_mail(raw), Envelope(None, ("support@example.se",), utcnow()), rules,
                  lookup=NoTickets(), numbering=TicketNumbering(),
                  identity=identity_of(rules, None)).to_json()


@pytest.mark.parametrize(("sender", "subject", "body", "priority", "signal"), [
    # Cloud Nine Care: the customer indicates Normal or High.
    ("anna.lind@bergstromsbygg.se", "[High] Kassan fungerar inte", "Se rubriken.",
     "High", "the customer indicated High: '[High]'"),
    ("anna.lind@bergstromsbygg.se", "Kassan", "Prioritet: Hög\nKassan visar fel.", "High",
     "the customer indicated High: 'Prioritet: Hög'"),
    ("anna.lind@bergstromsbygg.se", "Kassan", "Kassan ligger nere.", "Normal",
     "default priority of policy care"),
    # SoftOne P1-P5: P5 unless the registered contact says otherwise.
    ("per.olsson@lindqvistlogistik.se", "Prio 1: fakturering", "Hela systemet står.", "P1",
     "the customer indicated P1: 'Prio 1'"),
    ("per.olsson@lindqvistlogistik.se", "Lager", "Lagermodulen ligger nere sedan i morse.",
     "P1", "keyword 'ligger nere' means P1"),
    ("maria.holm@lindqvistlogistik.se", "Fråga", "Hur exporterar jag en rapport?", "P5",
     "default priority of policy office-p1-p5"),
    ("praktikant@lindqvistlogistik.se", "Driftstopp!", "Allt ligger nere, akut!", "P5",
     "praktikant@lindqvistlogistik.se is not a named contact of lindqvist-logistik and policy "
     "office-p1-p5 entitles named contacts only: no commitment until staff entitle the "
     "ticket; lowest priority"),
    # ITSL P1-P4 by impact, P3 by default.
    ("karin@halsovaxeln.se", "Driftstopp", "Ingen kommer åt tjänsten.", "P1",
     "keyword 'Driftstopp' means P1"),
    ("karin@halsovaxeln.se", "Inloggning", "Det går inte att logga in för någon i Sundsvall.",
     "P2", "keyword 'går inte att logga in' means P2"),
    ("karin@halsovaxeln.se", "Fråga", "Kan vi få en ny användare?", "P3",
     "default priority of policy itil-p1-p4"),
    # ClickSend: important when message delivery is affected.
    ("tom@nordicparcel.co.uk", "SMS", "Our messages are not being delivered since 10:00.",
     "important", "keyword 'not being delivered' means important"),
    ("tom@nordicparcel.co.uk", "API", "How do I sign webhook requests?", "non-urgent",
     "default priority of policy around-the-clock"),
    # Private senders are never prioritised, whatever they write.
    ("someone@gmail.com", "[High] Driftstopp", "Prio 1! Allt ligger nere!", "Normal",
     "private sender: lowest priority (not prioritised)"),
])
def test_priority_signals(sender: str, subject: str, body: str, priority: str,
                          signal: str) -> None:
    result = decision(support_mail(sender=sender, subject=subject, body=body + "\n"))
    assert (result["priority"], result["priority_reason"]) == (priority, signal)


def test_a_keyword_only_in_the_quoted_message_does_not_count() -> None:
    body = ("Tack, nu fungerar det igen!\n\nDen mån 23 nov. 2026 kl 10:12 skrev Support:\n"
            "> Vi har driftstopp och allt ligger nere.\n")
    result = decision(support_mail(sender="karin@halsovaxeln.se", subject="SV: Status",
                                   body=body))
    assert result["priority"] == "P3"


def test_priority_headers_count_only_when_the_policy_trusts_them(tmp_path: Path) -> None:
    raw = support_mail(sender="anna.lind@bergstromsbygg.se", subject="Kassan",
                       body="Kassan visar fel pris.\n",
                       headers={"X-Priority": "1 (Highest)", "Importance": "high"})
    assert decision(raw)["priority"] == "Normal"
    trusting = tmp_path / "rules"
    shutil.copytree(RULES, trusting)
    policy = trusting / "policies" / "care.toml"
    policy.write_text(policy.read_text().replace(
        'default_priority = "Normal"', 'default_priority = "Normal"\n'
        'trust_priority_headers = "High"'))
    result = decision(raw, load_rules(trusting))
    assert result["priority"] == "High"
    assert result["priority_reason"] == "X-Priority: 1 (Highest) (trusted by policy care)"


def test_an_itsl_p1_escalates_at_once(sqlite_runtime: Runtime) -> None:
    outcome = receive(sqlite_runtime, support_mail(
        sender="karin@halsovaxeln.se", subject="Driftstopp i meddelandetjänsten",
        body="Ingen kommer åt tjänsten sedan 09:12.\n"))
    report = run_monitor(sqlite_runtime.engine, sqlite_runtime.rules, utcnow(), "example.se")
    assert report.escalated == 1
    again = run_monitor(sqlite_runtime.engine, sqlite_runtime.rules, utcnow(), "example.se")
    assert again.escalated == 0
    assert outcome.ticket is not None
