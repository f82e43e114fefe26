"""The customer's own words decide the priority: the agreements' example sentences.

Each sentence below is the agreement's own description or example of a level
(seeds 001-004), written by a customer in Swedish or in English, and must
land on that level through `maild route --json` with the shipped rules.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
from sqlmodel import Session, col, select

from maild.cli import main
from maild.models import Outbox, Ticket, utcnow
from maild.routing.statements import find_phrases, negated_before
from maild.runtime import Runtime
from maild.sla.monitor import run_monitor
from tests.conftest import RULES, MaildCLI
from tests.mailmaker import support_mail
from tests.pipeline_helpers import receive

ITSL = "Karin Ek <karin@halsovaxeln.se>"
SOFTONE = "Per Olsson <per.olsson@lindqvistlogistik.se>"
CLICKSEND = "Tom Reed <tom@nordicparcel.co.uk>"
CLOUD_NINE = "Anna Lind <anna.lind@bergstromsbygg.se>"

AGREEMENT_SENTENCES = [
    # ITSL (seed 003): P1 Kritisk, P2 Hög, P3 Medel, P4 Låg.
    (ITSL, "Hubs", "Totalt driftstopp, ingen kommer åt systemet.", "P1"),
    (ITSL, "Hubs", "Hela tjänsten ligger nere, utan möjlig workaround. Majoriteten av "
     "användarna påverkas och verksamheten står stilla.", "P1"),
    (ITSL, "Hubs", "Total outage: nobody can access the system.", "P1"),
    (ITSL, "Filöverföring", "Väsentlig modul eller funktion (t.ex. filöverföring eller "
     "autentisering) fungerar inte för flera användare.", "P2"),
    (ITSL, "Hubs", "Allvarlig funktionsnedsättning för en större grupp användare eller en "
     "kritisk funktion, men tjänsten är delvis brukbar. Ingen enkel workaround finns.", "P2"),
    (ITSL, "File transfer", "File transfer, an essential function, does not work for several "
     "users.", "P2"),
    (ITSL, "Hubs", "Enstaka användare har problem med en icke-kritisk del av tjänsten, eller "
     "en kosmetisk bugg.", "P3"),
    (ITSL, "Hubs", "Begränsad påverkan på verksamheten. En enskild funktion är felaktig för "
     "vissa användare, men det finns en känd workaround.", "P3"),
    (ITSL, "Hubs", "A single user has a problem with a non-critical part of the service, or a "
     "cosmetic bug.", "P3"),
    (ITSL, "Hubs", "Förfrågningar om användning, mindre estetiska fel, förslag på förbättring.",
     "P4"),
    (ITSL, "Hubs", "Minimal påverkan eller allmänna frågor. Påverkar inte funktionalitet "
     "nämnvärt.", "P4"),
    (ITSL, "Hubs", "A general question and a suggestion for improvement: minimal impact.",
     "P4"),
    # SoftOne (seed 001): Prioritet 1-5, P5 the standard level.
    (SOFTONE, "SoftOne GO", "Programvarutjänsten går ej att starta, hela eller väsentliga "
     "delar av Programvarutjänsten är inte tillgängliga och går ej att kringgå.", "P1"),
    (SOFTONE, "SoftOne GO", "SoftOne GO cannot be started and the service is not available; "
     "there is no way around it.", "P1"),
    (SOFTONE, "Lön", "Det innebär att affärsverksamheten avsevärt försvåras men förhindrar "
     "inte användningen av Programvarutjänsten.", "P2"),
    (SOFTONE, "Payroll", "Our business operations are considerably impeded, but we can still "
     "use the service.", "P2"),
    (SOFTONE, "Lön", "Det innebär att viss del av affärsverksamheten avsevärt försvåras men "
     "förhindrar inte användningen av Programvarutjänsten.", "P3"),
    (SOFTONE, "Payroll", "Part of our business operations is considerably impeded, but we can "
     "still use the service.", "P3"),
    (SOFTONE, "Rapport", "Det här är viktigt för oss men kan kringgås.", "P4"),
    (SOFTONE, "Report", "This is important to us but can be worked around.", "P4"),
    (SOFTONE, "Fråga", "Frågan är av mindre betydelse för oss.", "P5"),
    (SOFTONE, "Question", "This is of minor importance to us.", "P5"),
    # ClickSend (seed 002): important (message delivery affected) or non-urgent.
    (CLICKSEND, "SMS", "Meddelandeleveransen påverkas: våra sms levereras inte.", "important"),
    (CLICKSEND, "SMS", "Message delivery is affected since 10:00.", "important"),
    (CLICKSEND, "API", "Vi behöver hjälp med API-integrationen.", "non-urgent"),
    (CLICKSEND, "API", "We need help with the API integration.", "non-urgent"),
    # Cloud Nine Care (seed 004): the level the customer indicated, High or Normal.
    (CLOUD_NINE, "Webbplatsen", "Driften av vår webbplats är helt utslagen. Kritiska "
     "applikationer är påverkade eller otillgängliga.", "High"),
    (CLOUD_NINE, "Web site", "Our web site is completely down and critical applications are "
     "affected.", "High"),
    (CLOUD_NINE, "Webbplatsen", "Ett mindre fel i sidfoten. Kritiska applikationer påverkas "
     "inte och verksamheten påverkas ej nämnvärt.", "Normal"),
    (CLOUD_NINE, "Web site", "A minor fault in the footer; critical applications are not "
     "affected.", "Normal"),
]

# The customer's own words about urgency, which the keywords must not overrule.
NEGATIONS_AND_STATED_LEVELS = [
    (CLOUD_NINE, "Kontaktformuläret", "Prioritet: Normal\n\nDet är inte brådskande, men "
     "kontaktformuläret skickar inga mejl.", "Normal",
     "the customer indicated Normal: 'Prioritet: Normal'"),
    (CLOUD_NINE, "Brådskande?", "Prioritet: Normal. Kritiska applikationer är påverkade, men "
     "vi har en lösning tills vidare.", "Normal",
     "the customer indicated Normal: 'Prioritet: Normal'"),
    (CLOUD_NINE, "Footer", "This is not urgent: the footer shows last year.", "Normal",
     "the customer indicated Normal: 'not urgent'"),
    (CLICKSEND, "Webhooks", "This is not urgent, but how do I sign webhook requests?",
     "non-urgent", "the customer indicated non-urgent: 'not urgent'"),
    (CLICKSEND, "Delivery report", "No rush: last night's outage report for our records, "
     "please.", "non-urgent", "the customer indicated non-urgent: 'No rush'"),
    (CLICKSEND, "Rapport", "Det är inte akut, vi vill bara ha statistik.", "non-urgent",
     "default priority of policy around-the-clock (not counted, negated: 'akut')"),
    (ITSL, "Fråga", "Det är inget driftstopp, bara en fråga om exporten.", "P3",
     "default priority of policy itil-p1-p4 (not counted, negated: 'driftstopp')"),
    (SOFTONE, "Prio 3: attestflödet", "Attestflödet fungerar inte. Det är akut för oss!", "P3",
     "the customer indicated P3: 'Prio 3'"),
    (SOFTONE, "Prioritet: P2", "Lönekörningen stannar.", "P2",
     "the customer indicated P2: 'Prioritet: P2'"),
    (ITSL, "Prioritet 3 (Medel)", "Exporten till Excel ger fel kolumnordning.", "P3",
     "the customer indicated P3: 'Prioritet 3'"),
]


@pytest.fixture(autouse=True)
def _logging_kept() -> Iterator[None]:
    """`main` points structlog at this test's captured stderr: put it back afterwards."""
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)


def _route(tmp_path: Path, capsys: pytest.CaptureFixture[str], raw: bytes) -> dict[str, Any]:
    message = tmp_path / "mail.eml"
    message.write_bytes(raw)
    code = main(["--rules-dir", str(RULES), "--data-dir", str(tmp_path / "var"), "route",
                 str(message), "--json"])
    out = capsys.readouterr().out
    assert code == 0, out
    result: dict[str, Any] = json.loads(out)
    return result


def _mail(sender: str, subject: str, sentence: str) -> bytes:
    name = sender.split("<", maxsplit=1)[0].strip()
    return support_mail(sender=sender, subject=subject,
                        body=f"Hej!\n\n{sentence}\n\nMed vänliga hälsningar\n{name}\n")


@pytest.mark.parametrize(("sender", "subject", "sentence", "level"), AGREEMENT_SENTENCES)
def test_the_agreements_own_sentences_land_on_their_level(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], sender: str, subject: str,
        sentence: str, level: str) -> None:
    result = _route(tmp_path, capsys, _mail(sender, subject, sentence))
    assert result["priority"] == level, result["priority_reason"]


@pytest.mark.parametrize(("sender", "subject", "sentence", "level", "reason"),
                         NEGATIONS_AND_STATED_LEVELS)
def test_a_stated_level_and_a_negation_beat_keywords(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], sender: str, subject: str,
        sentence: str, level: str, reason: str) -> None:
    result = _route(tmp_path, capsys, _mail(sender, subject, sentence))
    assert (result["priority"], result["priority_reason"]) == (level, reason)


def test_itsls_own_p3_example_is_p3_and_not_escalated(maild: MaildCLI) -> None:
    """Seed 003's P3 example was made P1 (escalated at once) by the keyword "kritisk"."""
    message = maild.cwd / "p3.eml"
    message.write_bytes(_mail(ITSL, "Problem i Hubs", "Enstaka användare har problem med en "
                              "icke-kritisk del av tjänsten, eller en kosmetisk bugg."))
    result = maild("route", str(message), "--json")
    assert result.code == 0, result.stderr
    decision = json.loads(result.stdout)
    assert decision["priority"] == "P3"
    assert "kritisk" not in decision["priority_reason"].replace("icke-kritisk", "")


def test_itsls_p3_example_goes_to_nobody_at_once(sqlite_runtime: Runtime) -> None:
    """Seed 003: only "Kritiska incidenter (P1) eskaleras omedelbart"; P3 waits its turn."""
    outcome = receive(sqlite_runtime, _mail(ITSL, "Problem i Hubs", "Enstaka användare har "
                                            "problem med en icke-kritisk del av tjänsten, "
                                            "eller en kosmetisk bugg."))
    report = run_monitor(sqlite_runtime.engine, sqlite_runtime.rules, utcnow(), "example.se")
    assert report.escalated == 0
    with Session(sqlite_runtime.engine) as session:
        recipients = {item.recipient for item in session.exec(select(Outbox))}
        ticket = session.exec(select(Ticket).where(col(Ticket.number) == outcome.ticket)).one()
    assert ticket.priority == "P3"
    assert not recipients & {"utveckling@example.se", "tjansteagare@example.se"}


def test_keywords_in_quoted_earlier_mail_and_in_the_signature_do_not_count(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    outlook = ("Hej,\n\nKan ni skicka fakturaunderlaget för november?\n\nMvh Karin\n\n"
               "From: Support <support@example.se>\nSent: den 2 november 2026 10:12\n"
               "To: Karin Ek <karin@halsovaxeln.se>\nSubject: Driftstopp\n\n"
               "Vi har driftstopp och allt ligger nere. Prio 1.\n")
    result = _route(tmp_path, capsys, support_mail(sender=ITSL, subject="Faktura",
                                                   body=outlook))
    assert result["priority"] == "P3"
    signature = ("Hej,\n\nHur lägger jag till en mottagare i adressboken?\n\n"
                 "Med vänliga hälsningar\nKarin Ek\nHälsoväxeln Norr AB\n"
                 "Vid driftstopp eller brådskande ärenden: 060-12 34 56\n")
    result = _route(tmp_path, capsys, support_mail(sender=ITSL, subject="Adressboken",
                                                   body=signature))
    assert result["priority"] == "P3", result["priority_reason"]


def test_a_stated_level_in_the_signature_still_counts(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    body = "Bokningssidan visar fel pris.\n\nMvh\nAnna Lind\n[High]\n"
    result = _route(tmp_path, capsys, support_mail(sender=CLOUD_NINE, subject="Pris",
                                                   body=body))
    assert result["priority"] == "High"


@pytest.mark.parametrize(("text", "phrase", "counted"), [
    ("en icke-kritisk del av tjänsten", "kritisk", False),
    ("en okritisk del", "kritisk", False),
    ("non-urgent", "urgent", False),
    ("this is not urgent", "urgent", False),
    ("det är inte särskilt brådskande", "brådskande", False),
    ("isn't urgent at all", "urgent", False),
    ("Inte jag, men allt är brådskande", "brådskande", True),
    ("Vi kommer inte åt systemet och det är brådskande", "brådskande", True),
    ("Vi kommer inte åt systemet - driftstopp", "driftstopp", True),
    ("driftstopp-rapporten för oktober", "driftstopp", False),
    ("- driftstopp i natt", "driftstopp", True),
    ("KRITISK!", "kritisk", True),
])
def test_phrases_count_only_as_whole_words_and_not_after_a_negation(
        text: str, phrase: str, counted: bool) -> None:
    hits = find_phrases(text, {"x": (phrase,)})
    assert any(not hit.negated for hit in hits) is counted


def test_the_longer_phrase_of_another_level_wins() -> None:
    text = "viss del av affärsverksamheten avsevärt försvåras"
    hits = find_phrases(text, {"P2": ("affärsverksamheten avsevärt försvåras",),
                               "P3": ("viss del av affärsverksamheten avsevärt försvåras",)})
    assert [hit.level for hit in hits] == ["P3"]


def test_a_negation_reaches_three_words_back_within_its_clause() -> None:
    text = "inte alls särskilt brådskande. Brådskande"
    assert negated_before(text, text.index("brådskande"))
    assert not negated_before(text, text.index("Brådskande"))
