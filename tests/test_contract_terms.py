"""Terms the agreements state that the rules could not: conditional required items, several
targets per priority, a same-day target, a queue's own service hours, a post-incident review.

Each test quotes the agreement it holds maild to (`/work/shared/seeds/`).
"""

from __future__ import annotations

import json
import shutil
from email import message_from_bytes
from email.message import Message
from email.policy import default
from pathlib import Path

import pytest
from sqlmodel import Session, col, select

from maild.models import Outbox, Ticket, TicketEvent
from maild.routing.load import RulesError, load_rules
from maild.runtime import Runtime
from maild.sla.monitor import run_monitor
from tests.conftest import RULES, MaildCLI
from tests.mailmaker import support_mail
from tests.pipeline_helpers import acks, arrive, filled
from tests.pipeline_helpers import stockholm as at
from tests.pipeline_helpers import ticket_numbered as ticket


def trail(runtime: Runtime, number: str) -> list[TicketEvent]:
    with Session(runtime.engine) as session:
        row = session.exec(select(Ticket).where(col(Ticket.number) == number)).one()
        return list(session.exec(select(TicketEvent).where(
            col(TicketEvent.ticket_id) == row.id).order_by(col(TicketEvent.id))))


def body_of(message: Message) -> str:
    payload = message.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload.decode("utf-8")


SMAK = "Henrik Dahl <henrik.dahl@smakbolaget.se>"
SIGNATURE = ("\n\nMed vänliga hälsningar\nHenrik Dahl\nMarknadschef\nSmakbolaget Sverige AB\n"
             "Tel 08-123 456 78\n")

# -------------------------- ClearOn: "Kampanjnummer vid ärende rörande en kampanj"


def test_a_login_question_is_not_asked_for_a_campaign_number(maild: MaildCLI,
                                                             tmp_path: Path) -> None:
    mail = tmp_path / "login.eml"
    mail.write_bytes(support_mail(
        sender=SMAK, subject="Kan inte logga in",
        body="Hej!\n\nJag kommer inte in i administrationsportalen sedan i morse, lösenordet "
             "godtas inte fast det är rätt." + SIGNATURE))
    result = maild("route", str(mail), "--json")
    record = json.loads(result.stdout)
    assert record["customer"] == "smakbolaget"
    assert "campaign_number" not in record["missing"]
    assert record["required_when"]["campaign_number"].startswith("not asked")


def test_a_campaign_case_is_asked_for_its_number(maild: MaildCLI, tmp_path: Path) -> None:
    mail = tmp_path / "campaign.eml"
    mail.write_bytes(support_mail(
        sender=SMAK, subject="Koderna nekas",
        body="Hej!\n\nKoderna i vår julkampanj nekas i kassan hos flera butiker sedan "
             "i förmiddags." + SIGNATURE))
    record = json.loads(maild("route", str(mail), "--json").stdout)
    assert "campaign_number" in record["missing"]
    assert record["required_when"]["campaign_number"] == "asked: the case mentions 'julkampanj'"
    english = tmp_path / "campaign-en.eml"
    english.write_bytes(support_mail(
        sender=SMAK, subject="Vouchers refused",
        body="Hello,\n\nThe vouchers of our Christmas campaign K-2026-131 are refused at the "
             "tills." + SIGNATURE))
    record = json.loads(maild("route", str(english), "--json").stdout)
    assert "campaign_number" not in record["missing"], "asked, and given"
    assert record["evidence"]["campaign_number"].startswith("campaign K-2026-131")


def test_a_campaign_in_the_quoted_history_does_not_make_it_a_campaign_case(
        sqlite_runtime: Runtime) -> None:
    body = ("Hej igen,\n\nNu kan jag inte logga in alls i portalen, det står att kontot är "
            "låst." + SIGNATURE + "\n\nDen mån 23 nov. 2026 kl 10:12 skrev Support "
            "<support@example.se>:\n> Gäller det kampanjen i december?\n")
    number = arrive(sqlite_runtime, support_mail(sender=SMAK, subject="Kontot låst",
                                                 body=body), "2026-11-24T10:00")
    assert "campaign_number" not in (ticket(sqlite_runtime, number).missing or [])


# ------------------------------------ ClickSend: "action within 30 minutes, answer within 2 hours"

CLICKSEND = {"sender": "Tom Baker <tom@nordicparcel.co.uk>", "subject": "SMS not delivered",
             "body": "Hello,\n\nOur messages are not delivered to any UK numbers since 8 this "
                     "morning.\n\nTom\n"}


def test_important_clicksend_cases_get_an_action_and_a_response_deadline(
        sqlite_runtime: Runtime) -> None:
    number = arrive(sqlite_runtime, support_mail(**CLICKSEND), "2026-11-28T23:50")  # Saturday
    row = ticket(sqlite_runtime, number)
    assert row.priority == "important"
    assert row.action_due == at("2026-11-29T00:20")
    assert row.response_due == at("2026-11-29T01:50")
    assert row.decision is not None and row.decision["action_due"] == "2026-11-29T00:20:00+01:00"
    [ack] = acks(sqlite_runtime)
    text = body_of(ack)
    assert "We will start work on your case by" in text
    assert text.index("start work") < text.index("first answer")


def test_a_missed_action_target_is_escalated_and_in_the_trail(sqlite_runtime: Runtime) -> None:
    number = arrive(sqlite_runtime, support_mail(**CLICKSEND), "2026-11-23T10:00")
    rules = sqlite_runtime.rules
    assert run_monitor(sqlite_runtime.engine, rules, at("2026-11-23T10:29"), "example.se") \
        .escalated == 0
    assert run_monitor(sqlite_runtime.engine, rules, at("2026-11-23T10:31"), "example.se") \
        .escalated == 1
    assert run_monitor(sqlite_runtime.engine, rules, at("2026-11-23T10:40"), "example.se") \
        .escalated == 0, "once"
    row = ticket(sqlite_runtime, number)
    assert row.action_breached_at == at("2026-11-23T10:30")
    breach = [e for e in trail(sqlite_runtime, number) if e.kind == "sla-breach"]
    assert [e.detail["target"] for e in breach] == ["action"]
    with Session(sqlite_runtime.engine) as session:
        sent = filled(session, session.exec(
            select(Outbox).where(col(Outbox.purpose) == "escalation")).all())
    assert [item.recipient for item in sent] == ["teknik-jour@example.se"]
    notice = message_from_bytes(sent[0].raw, policy=default)
    assert str(notice["Subject"]).endswith("Tiden för att påbörja arbetet har passerats")


def test_an_assignment_in_time_meets_the_action_target(sqlite_runtime: Runtime) -> None:
    number = arrive(sqlite_runtime, support_mail(**CLICKSEND), "2026-11-23T10:00")
    from maild.tickets.lifecycle import record
    with Session(sqlite_runtime.engine) as session:
        row = session.exec(select(Ticket).where(col(Ticket.number) == number)).one()
        record(session, row, actor="eva", kind="assigned", at=at("2026-11-23T10:10"),
               new="eva@example.se")
        session.commit()
    report = run_monitor(sqlite_runtime.engine, sqlite_runtime.rules, at("2026-11-23T10:45"),
                         "example.se")
    assert report.escalated == 0
    assert ticket(sqlite_runtime, number).action_breached_at is None


# ------------------------------------------------ ITSL P2: "arbete påbörjas samma dag"

ITSL_P2 = {"sender": "Karin Ek <karin@halsovaxeln.se>", "subject": "Prio 2: filöverföringen",
           "body": "Hej,\n\nFilöverföringen fungerar inte för flera användare på "
                   "mottagningen.\n\nKarin\n"}


@pytest.mark.parametrize(("received", "action", "response"), [
    ("2026-11-23T10:00", "2026-11-23T17:00", "2026-11-23T14:00"),   # Monday: the same day
    ("2026-11-23T16:30", "2026-11-23T17:00", "2026-11-24T11:30"),   # late: still the same day
    ("2026-11-28T10:00", "2026-11-30T17:00", "2026-11-30T12:00"),   # Saturday: Monday
])
def test_itsl_p2_work_starts_the_same_business_day(sqlite_runtime: Runtime, received: str,
                                                    action: str, response: str) -> None:
    row = ticket(sqlite_runtime, arrive(sqlite_runtime, support_mail(**ITSL_P2), received))
    assert row.priority == "P2"
    assert (row.action_due, row.response_due) == (at(action), at(response))


def test_sla_due_accepts_the_same_business_day(maild: MaildCLI) -> None:
    same = maild("sla", "due", "--hours", "mon-fri 08:00-17:00", "--holidays", "SE",
                 "--target", "0bd", "--received", "2026-12-24T16:59")
    assert same.stdout.strip() == "2026-12-24T17:00:00+01:00"
    after = maild("sla", "due", "--hours", "mon-fri 08:00-17:00", "--holidays", "SE",
                  "--target", "0bd", "--received", "2026-12-24T17:00")
    assert after.stdout.strip() == "2026-12-28T17:00:00+01:00", "juldagen, annandagen closed"
    zero = maild("sla", "due", "--hours", "24/7", "--target", "0h")
    assert zero.code == 1 and "zero" in zero.stderr
    p2 = maild("sla", "due", "--policy", "itil-p1-p4", "--priority", "P2", "--action",
               "--received", "2026-11-23T16:30")
    assert p2.stdout.strip() == "2026-11-23T17:00:00+01:00"
    teknik = maild("sla", "due", "--policy", "campaign-service", "--queue", "tech", "--action",
                   "--received", "2026-11-28T22:30")
    assert teknik.stdout.strip() == "2026-11-29T06:30:00+01:00"
    unknown = maild("sla", "due", "--policy", "campaign-service", "--queue", "teknik")
    assert unknown.code == 1 and "no queue 'teknik'" in unknown.stderr


# ------------------------- ClearOn teknik@: "kl 06.00 - 23.00 samtliga dagar", "inom en timme"


def test_clearon_technical_support_counts_its_own_hours(sqlite_runtime: Runtime) -> None:
    mail = support_mail(sender=SMAK, to="teknik@example.se", subject="API svarar 503",
                        body="Hej!\n\nAPI:et för inlösen svarar 503 på alla anrop sedan "
                             "klockan nio i morse." + SIGNATURE)
    number = arrive(sqlite_runtime, mail, "2026-11-28T10:00", to="teknik@example.se")
    row = ticket(sqlite_runtime, number)
    assert row.queue == "tech"
    assert row.action_due == at("2026-11-28T11:00"), "troubleshooting within the hour, Saturday"
    assert row.response_due == at("2026-11-28T12:00")
    late = arrive(sqlite_runtime, mail.replace(b"Message-ID: <", b"Message-ID: <late."),
                  "2026-11-28T22:30", to="teknik@example.se")
    # 30 minutes on Saturday until 23:00, the rest from 06:00 on Sunday.
    assert ticket(sqlite_runtime, late).action_due == at("2026-11-29T06:30")
    text = body_of(acks(sqlite_runtime)[0])
    assert "lördag 28 november kl. 12:00" in text
    assert "06:00–23:00" in text
    user = arrive(sqlite_runtime, support_mail(sender=SMAK, subject="Rapporten",
                                               body="Hej!\n\nHur tar jag ut månadsrapporten "
                                                    "för inlösta värdebevis?" + SIGNATURE),
                  "2026-11-28T10:00")
    assert ticket(sqlite_runtime, user).response_due == at("2026-11-30T11:00"), \
        "user support keeps weekdays 09-17"


# ------------------------------------------------- ITSL: post-incident review for P1 and P2


def test_a_p2_ticket_closes_only_with_its_review(sqlite_runtime: Runtime, maild: MaildCLI,
                                                 tmp_path: Path) -> None:
    from maild.tickets.closing import CloseRefused, close_ticket
    number = arrive(sqlite_runtime, support_mail(**ITSL_P2), "2026-11-23T10:00")
    with Session(sqlite_runtime.engine) as session:
        row = session.exec(select(Ticket).where(col(Ticket.number) == number)).one()
        with pytest.raises(CloseRefused, match="post-incident review"):
            close_ticket(session, row, sqlite_runtime.rules, actor="eva",
                         at=at("2026-11-24T10:00"))
        close_ticket(session, row, sqlite_runtime.rules, actor="eva", at=at("2026-11-24T10:00"),
                     review="Rotorsak: certifikatet hade gått ut. Förnyat, bevakning införd.")
        session.commit()
    row = ticket(sqlite_runtime, number)
    assert row.status == "closed"
    kinds = [(e.kind, e.detail.get("text")) for e in trail(sqlite_runtime, number)][-2:]
    assert kinds == [("review", "Rotorsak: certifikatet hade gått ut. Förnyat, bevakning "
                                "införd."), ("status", None)]


def test_ticket_close_command_refuses_a_p1_without_review(maild: MaildCLI,
                                                          tmp_path: Path) -> None:
    mail = tmp_path / "p1.eml"
    mail.write_bytes(support_mail(sender="karin@halsovaxeln.se", subject="Prio 1: totalt stopp",
                                  body="Hej,\n\nIngen kommer åt systemet.\n\nKarin\n"))
    maild("ingest", str(mail))
    number = json.loads(maild("tickets", "--json").stdout)["tickets"][0]["number"]
    refused = maild("ticket", "close", number)
    assert refused.code == 1
    assert refused.stderr.strip().splitlines()[-1].endswith(
        "requires a post-incident review before closing: give it with --review TEXT")
    closed = maild("ticket", "close", number, "--review", "Orsak: full disk. Larm tillagt.")
    assert closed.code == 0 and "closed with its review" in closed.stdout
    shown = maild("ticket", "show", number)
    assert "review" in shown.stdout and "Orsak: full disk. Larm tillagt." in shown.stdout
    plain = tmp_path / "p3.eml"
    plain.write_bytes(support_mail(sender="karin@halsovaxeln.se", subject="Fråga om loggar",
                                   body="Hej,\n\nHur länge sparas loggarna?\n\nKarin\n"))
    maild("ingest", str(plain))
    p3 = next(t["number"] for t in json.loads(maild("tickets", "--json").stdout)["tickets"]
              if t["priority"] == "P3")
    assert maild("ticket", "close", p3).code == 0, "P3 needs no review"


# --------------------------------------------------- rules check refuses what it cannot honour


@pytest.fixture
def rules_dir(tmp_path: Path) -> Path:
    target = tmp_path / "rules"
    shutil.copytree(RULES, target)
    return target


def problems_with(rules_dir: Path, policy: str, old: str, new: str) -> list[str]:
    path = rules_dir / "policies" / f"{policy}.toml"
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new), encoding="utf-8")
    with pytest.raises(RulesError) as error:
        load_rules(rules_dir)
    return [str(problem) for problem in error.value.problems]


CONDITION = 'campaign_number = ["kampanj", "campaign", "värdebevis", "voucher"]'


@pytest.mark.parametrize(("policy", "old", "new", "expected"), [
    ("campaign-service", CONDITION,
     'campaign_nummer = ["kampanj"]', "required_when names unknown item 'campaign_nummer'"),
    ("campaign-service", CONDITION,
     'description = ["kampanj"]', "'description' is both in required (always) and in "
     "required_when"),
    ("campaign-service", CONDITION, "campaign_number = []",
     "required_when.campaign_number must be a non-empty list"),
    ("campaign-service", "[queue.tech]", "[queue.teknik]",
     "[queue.teknik] names an unknown queue"),
    ("campaign-service", 'action = "1h"', 'action = "0h"', "queue tech: action: target '0h' "
     "is zero"),
    ("campaign-service", 'hours = "mon-sun 06:00-23:00"', 'hours = "mon-sun 06:00-25:00"',
     "queue tech: hours 'mon-sun 06:00-25:00' is not of the form"),
    ("itil-p1-p4", 'review_required = ["P1", "P2"]', 'review_required = ["P1", "Hög"]',
     "review_required names 'Hög', which is not one of priorities"),
    ("around-the-clock", 'action = "30m"', 'action = "30 minuter"',
     "action '30 minuter' is not a target"),
])
def test_rules_check_refuses_terms_it_cannot_honour(rules_dir: Path, policy: str, old: str,
                                                    new: str, expected: str) -> None:
    found = problems_with(rules_dir, policy, old, new)
    assert any(expected in problem for problem in found), found
    assert all(problem.startswith(str(rules_dir / "policies" / policy)) for problem in found)
