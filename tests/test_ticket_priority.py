"""Staff change a ticket's priority: deadlines from the ticket's start, an event, the trail.

SoftOne (seed 001), Prioritet 3: "Denna prioritet tilldelas även prioritet 1
och 2 ärenden, där en alternativ lösning kan tillhandahållas."
"""

from __future__ import annotations

import json
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import Session, col, select

from maild.models import Ticket, TicketEvent, utcnow
from maild.routing.load import load_rules
from maild.runtime import Runtime
from maild.sla.monitor import run_monitor
from maild.sla.policy_clock import deadlines
from maild.tickets.reprioritise import PriorityRefused, change_priority
from tests.conftest import RULES, MaildCLI
from tests.mailmaker import support_mail
from tests.pipeline_helpers import receive

STOCKHOLM = ZoneInfo("Europe/Stockholm")
# Monday 16 November 2026 10:12 Swedish time.
MONDAY = datetime(2026, 11, 16, 10, 12, tzinfo=STOCKHOLM)
SOFTONE_P1 = support_mail(sender="Per Olsson <per.olsson@lindqvistlogistik.se>",
                          subject="Prio 1: SoftOne GO går inte att starta",
                          body="Hej!\n\nProgramvarutjänsten går ej att starta för någon av "
                               "oss.\n\nMvh Per\n")


def _opened_on_monday(runtime: Runtime, raw: bytes) -> str:
    """A ticket received through the pipeline, moved to Monday 10:12 with its deadlines."""
    outcome = receive(runtime, raw)
    assert outcome.ticket is not None
    with Session(runtime.engine) as session:
        ticket = session.exec(select(Ticket).where(col(Ticket.number) == outcome.ticket)).one()
        policy = runtime.rules.policies[ticket.policy or ""]
        ticket.created_at = MONDAY
        terms = deadlines(policy, ticket.priority, MONDAY, ticket.queue)
        ticket.response_due, ticket.resolution_due = terms.response, terms.resolution
        session.add(ticket)
        session.commit()
    return outcome.ticket


def _ticket(runtime: Runtime, number: str) -> Ticket:
    with Session(runtime.engine) as session:
        return session.exec(select(Ticket).where(col(Ticket.number) == number)).one()


def test_a_softone_p1_with_a_workaround_becomes_p3_with_deadlines_from_its_start(
        runtime: Runtime) -> None:
    number = _opened_on_monday(runtime, SOFTONE_P1)
    before = _ticket(runtime, number)
    assert before.priority == "P1"
    # P1: work starts within 2 office hours (mon-fri 08-17): Monday 12:12.
    assert before.response_due == datetime(2026, 11, 16, 12, 12, tzinfo=STOCKHOLM)
    at = datetime(2026, 11, 16, 11, 0, tzinfo=STOCKHOLM)
    with Session(runtime.engine) as session:
        ticket = session.exec(select(Ticket).where(col(Ticket.number) == number)).one()
        change = change_priority(
            session, ticket, "p3", rules=runtime.rules, actor="Lisa", at=at,
            reason="alternativ lösning: fakturera via exporten tills vidare")
        session.commit()
    assert (change.old, change.new) == ("P1", "P3")
    after = _ticket(runtime, number)
    assert after.priority == "P3"
    # P3: 12 office hours from Monday 10:12: 6 h 48 min on Monday, 5 h 12 min on Tuesday.
    assert after.response_due == datetime(2026, 11, 17, 13, 12, tzinfo=STOCKHOLM)
    with Session(runtime.engine) as session:
        [event] = session.exec(select(TicketEvent).where(
            col(TicketEvent.ticket_id) == after.id, col(TicketEvent.kind) == "priority")).all()
    assert event.actor == "Lisa"
    assert event.detail["old"] == "P1" and event.detail["new"] == "P3"
    assert event.detail["reason"] == "alternativ lösning: fakturera via exporten tills vidare"
    assert datetime.fromisoformat(event.detail["response_due"]) == after.response_due
    assert datetime.fromisoformat(event.detail["was_response_due"]) == before.response_due


def test_a_breach_that_the_new_deadline_does_not_make_is_cleared(
        sqlite_runtime: Runtime) -> None:
    number = _opened_on_monday(sqlite_runtime, SOFTONE_P1)
    late = datetime(2026, 11, 16, 15, 0, tzinfo=STOCKHOLM)
    run_monitor(sqlite_runtime.engine, sqlite_runtime.rules, late, "example.se")
    assert _ticket(sqlite_runtime, number).response_breached_at is not None
    with Session(sqlite_runtime.engine) as session:
        ticket = session.exec(select(Ticket).where(col(Ticket.number) == number)).one()
        change_priority(session, ticket, "P3", rules=sqlite_runtime.rules, actor="Lisa",
                        at=late, reason="workaround")
        session.commit()
    assert _ticket(sqlite_runtime, number).response_breached_at is None


def test_raising_an_itsl_ticket_to_p1_escalates_it(sqlite_runtime: Runtime) -> None:
    outcome = receive(sqlite_runtime, support_mail(
        sender="karin@halsovaxeln.se", subject="Fråga om exporten",
        body="Exporten ger fel kolumnordning.\n"))
    assert outcome.ticket is not None
    assert run_monitor(sqlite_runtime.engine, sqlite_runtime.rules, utcnow(),
                       "example.se").escalated == 0
    with Session(sqlite_runtime.engine) as session:
        ticket = session.exec(select(Ticket).where(col(Ticket.number) == outcome.ticket)).one()
        assert ticket.priority == "P3"
        change_priority(session, ticket, "P1", rules=sqlite_runtime.rules, actor="Lisa",
                        at=utcnow(), reason="hela Sundsvall berörs")
        session.commit()
    assert run_monitor(sqlite_runtime.engine, sqlite_runtime.rules, utcnow(),
                       "example.se").escalated == 1


@pytest.mark.parametrize(("level", "reason", "refusal"), [
    ("P6", "x", "'P6' is not a priority of policy office-p1-p5"),
    ("High", "x", "choose one of P1, P2, P3, P4, P5"),
    ("P1", "x", "already has priority P1"),
    ("P3", "  ", "say why the priority changes"),
])
def test_a_change_the_policy_cannot_make_is_refused_and_nothing_changes(
        sqlite_runtime: Runtime, level: str, reason: str, refusal: str) -> None:
    number = _opened_on_monday(sqlite_runtime, SOFTONE_P1)
    with Session(sqlite_runtime.engine) as session:
        ticket = session.exec(select(Ticket).where(col(Ticket.number) == number)).one()
        with pytest.raises(PriorityRefused, match=refusal):
            change_priority(session, ticket, level, rules=sqlite_runtime.rules, actor="Lisa",
                            at=utcnow(), reason=reason)
    after = _ticket(sqlite_runtime, number)
    assert after.priority == "P1"
    assert after.response_due == datetime(2026, 11, 16, 12, 12, tzinfo=STOCKHOLM)


def test_a_ticket_without_a_commitment_gets_none_by_a_new_priority(
        sqlite_runtime: Runtime) -> None:
    number = _opened_on_monday(sqlite_runtime, SOFTONE_P1)
    with Session(sqlite_runtime.engine) as session:
        ticket = session.exec(select(Ticket).where(col(Ticket.number) == number)).one()
        ticket.response_due = ticket.resolution_due = None  # held: no commitment given
        session.add(ticket)
        session.commit()
        change_priority(session, ticket, "P2", rules=sqlite_runtime.rules, actor="Lisa",
                        at=utcnow(), reason="affärsverksamheten avsevärt försvåras")
        session.commit()
    after = _ticket(sqlite_runtime, number)
    assert (after.priority, after.response_due) == ("P2", None)


def test_the_command_changes_the_priority_and_ticket_show_tells(maild: MaildCLI) -> None:
    assert maild("deliver", "--process", input=SOFTONE_P1).code == 0
    [row] = json.loads(maild("tickets", "--json").stdout)["tickets"]
    assert row["priority"] == "P1"
    refused = maild("ticket", "priority", row["number"], "P9", "--reason", "test")
    assert refused.code == 1
    assert refused.stderr.strip() == (
        f"maild: 'P9' is not a priority of policy office-p1-p5 ({row['number']}): "
        "choose one of P1, P2, P3, P4, P5")
    reason = "P1 med alternativ lösning blir P3 (SoftOne Supportnivåer, prioritet 3)"
    changed = maild("ticket", "priority", row["number"], "P3", "--reason", reason, "--by",
                    "Lisa")
    assert changed.code == 0, changed.stderr
    assert f"{row['number']}: priority P1 → P3 ({reason}); response due" in changed.stdout
    shown = json.loads(maild("ticket", "show", row["number"], "--json").stdout)
    assert shown["priority"] == "P3"
    received = datetime.fromisoformat(shown["created_at"])
    policy = load_rules(RULES).policies["office-p1-p5"]
    assert datetime.fromisoformat(shown["response_due"]) == deadlines(
        policy, "P3", received).response
    [event] = [e for e in shown["events"] if e["kind"] == "priority"]
    assert (event["actor"], event["detail"]["old"], event["detail"]["new"],
            event["detail"]["reason"]) == ("Lisa", "P1", "P3", reason)
    text = maild("ticket", "show", row["number"]).stdout
    assert "priority: P3" in text and f"reason: {reason}" in text
