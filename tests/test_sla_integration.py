"""The SLA clock inside maild: deadlines on tickets, in the acknowledgement, watched, reported."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlmodel import Session, col, select

from maild.intake import store_inbound
from maild.models import Outbox, Ticket
from maild.runtime import Runtime
from maild.sla import monitor
from maild.sla.monitor import run_monitor
from tests.conftest import MaildCLI
from tests.mailmaker import support_mail
from tests.pipeline_helpers import acks, arrive, filled, inbound
from tests.pipeline_helpers import stockholm as at
from tests.pipeline_helpers import ticket_numbered as ticket


def test_deadlines_per_policy_are_stored_and_explained(sqlite_runtime: Runtime) -> None:
    care = arrive(sqlite_runtime, support_mail(), "2026-11-22T03:00")  # Sunday night
    assert ticket(sqlite_runtime, care).response_due == at("2026-11-24T17:00")
    office = arrive(sqlite_runtime, support_mail(sender="per.olsson@lindqvistlogistik.se",
                                                 subject="Faktura"), "2026-11-20T16:00")
    # P5 48 office hours: Fri 1 h, Mon-Fri 45 h, Mon 30 Nov 2 h.
    assert ticket(sqlite_runtime, office).response_due == at("2026-11-30T10:00")
    itil = arrive(sqlite_runtime, support_mail(sender="karin@halsovaxeln.se",
                                               subject="Fråga"), "2026-12-23T16:30")
    # P3 next working day; plain SE: julafton is a working day.
    assert ticket(sqlite_runtime, itil).response_due == at("2026-12-24T17:00")
    assert ticket(sqlite_runtime, itil).resolution_due is not None
    unknown = arrive(sqlite_runtime, support_mail(sender="x@okand-firma.se", subject="Hej"),
                     "2026-11-23T10:00")
    assert ticket(sqlite_runtime, unknown).response_due is None, "no agreement, no promise"


def test_the_acknowledgement_states_the_deadline_in_words(sqlite_runtime: Runtime) -> None:
    arrive(sqlite_runtime, support_mail(), "2026-11-22T03:00")
    arrive(sqlite_runtime, support_mail(sender="tom@nordicparcel.co.uk", subject="API question",
                                        body="Hello, how do I use the delivery webhook?\n"),
           "2026-11-23T16:30")
    [swedish, english] = acks(sqlite_runtime)
    assert "Du får ett första svar senast tisdag 24 november kl. 17:00 svensk tid." in \
        swedish.get_content()
    # non-urgent: 8 business hours, Mon 16:30-17:00 then Tue 09:00-16:30 Swedish time,
    # given in the customer's zone (Nordic Parcel: Europe/London).
    assert "You will get a first answer by Tuesday 24 November at 15:30 UK time (GMT)." in \
        english.get_content()


def test_a_staff_reply_on_the_thread_is_the_first_response(sqlite_runtime: Runtime) -> None:
    number = arrive(sqlite_runtime, support_mail(), "2026-11-23T10:00")
    reply = support_mail(sender="Eva Support <eva@example.se>", to="anna.lind@bergstromsbygg.se",
                         subject=f"SV: [{number}] Bokningssidan visar fel pris",
                         headers={"Cc": "support@example.se"},
                         body="Hej Anna, vi tittar på det nu.\n")
    stored = store_inbound(sqlite_runtime.engine, reply, transport="smtp",
                           received_at=at("2026-11-23T11:15"))
    outcome = sqlite_runtime.processor().process_now(stored.inbound_id)
    assert outcome is not None and outcome.kind == "followup"
    assert inbound(sqlite_runtime, outcome.inbound_id).decision["staff"] is True  # type: ignore[index]
    assert ticket(sqlite_runtime, number).first_response_at == at("2026-11-23T11:15")
    report = run_monitor(sqlite_runtime.engine, sqlite_runtime.rules, at("2026-12-01T12:00"),
                         "example.se")
    assert report.response_breaches == 0


def test_the_monitor_warns_then_escalates_exactly_once(sqlite_runtime: Runtime) -> None:
    number = arrive(sqlite_runtime, support_mail(sender="karin@halsovaxeln.se",
                                                 subject="Inloggning"), "2026-11-23T08:00")
    # ITIL P3: due Tue 24 Nov 17:00; 18 open hours; 80 % after 14.4 h = Tue 13:24.
    assert ticket(sqlite_runtime, number).response_due == at("2026-11-24T17:00")
    rules = sqlite_runtime.rules

    def check(moment: str) -> tuple[int, int, int]:
        report = run_monitor(sqlite_runtime.engine, rules, at(moment), "example.se")
        return report.warned, report.response_breaches, report.escalated

    assert check("2026-11-24T13:00") == (0, 0, 0)
    assert check("2026-11-24T13:30") == (1, 0, 0)
    assert check("2026-11-24T14:00") == (0, 0, 0), "one warning only"
    assert check("2026-11-24T17:01") == (0, 1, 1)
    assert check("2026-11-25T09:00") == (0, 0, 0), "escalated once"
    with Session(sqlite_runtime.engine) as session:
        sent = filled(session, session.exec(
            select(Outbox).where(col(Outbox.purpose) == "escalation")).all())
    assert sorted(item.recipient for item in sent) == sorted(
        ["utveckling@example.se", "tjansteagare@example.se"] * 2)
    escalation = next(item for item in sent if b"passerats" in item.raw)
    assert b"Auto-Submitted: auto-generated" in escalation.raw
    assert f"[{number}][P3]".encode() in escalation.raw
    assert ticket(sqlite_runtime, number).response_breached_at == at("2026-11-24T17:00")


def test_a_pass_reads_the_open_tickets_a_chunk_at_a_time_and_misses_none(
        sqlite_runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(monitor, "CHUNK", 2)
    numbers = [arrive(sqlite_runtime, support_mail(sender="karin@halsovaxeln.se",
                                                   subject=f"Inloggning {n}"), "2026-11-23T08:00")
               for n in range(5)]
    rules = sqlite_runtime.rules
    report = run_monitor(sqlite_runtime.engine, rules, at("2026-11-24T17:01"), "example.se")
    assert report.response_breaches == 5
    assert all(ticket(sqlite_runtime, number).response_breached_at is not None
               for number in numbers)
    again = run_monitor(sqlite_runtime.engine, rules, at("2026-11-25T09:00"), "example.se")
    assert again.response_breaches == 0


def test_report_computes_the_penalty_for_constructed_months(sqlite_runtime: Runtime,
                                                            maild: MaildCLI,
                                                            tmp_path: Path) -> None:
    from maild.commands.common import Context
    from maild.commands.sla import sla_report

    # Bergströms Bygg (care, Cloud Nine's table) in November: 3 answered in time, 2 not.
    # Care entitles named contacts only: the cases come from Anna, a registered contact.
    numbers = [arrive(sqlite_runtime, support_mail(sender="anna.lind@bergstromsbygg.se",
                                                   subject=f"Ärende {i}",
                                                   body=f"Problem nummer {i}.\n"),
                      f"2026-11-{10 + i:02d}T10:00") for i in range(5)]
    with Session(sqlite_runtime.engine) as session:
        for index, number in enumerate(numbers):
            row = session.exec(select(Ticket).where(col(Ticket.number) == number)).one()
            if index < 3:
                row.first_response_at = row.created_at
            session.add(row)
        session.commit()
    # Nordic Parcel (uptime table) has one ticket; its uptime is given on the command line.
    arrive(sqlite_runtime, support_mail(sender="tom@nordicparcel.co.uk", subject="SMS",
                                        body="Messages are delayed.\n"), "2026-11-12T10:00")
    context = Context(sqlite_runtime.config)
    context._runtime = sqlite_runtime
    import argparse
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        sla_report(context, argparse.Namespace(month="2026-11", customer=None, format="json",
                                               uptime=["nordic-parcel=98.5"], downtime=[]))
    report = {row["customer"]: row for row in json.loads(out.getvalue())["customers"]}
    care = report["bergstroms-bygg"]
    assert (care["tickets"], care["responded_in_time"], care["breaches"]) == (5, 3, 2)
    assert care["penalty_percent"] == 50
    assert report["nordic-parcel"]["penalty_percent"] == 10
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        sla_report(context, argparse.Namespace(month="2026-10", customer=None, format="json",
                                               uptime=[], downtime=[]))
    october = {row["customer"]: row for row in json.loads(out.getvalue())["customers"]}
    assert set(october) == set(sqlite_runtime.rules.customers), "a month without tickets is listed"
    assert all(row["tickets"] == row["breaches"] == 0 for row in october.values())
    assert october["bergstroms-bygg"]["penalty_percent"] == 0


def test_sla_due_command(maild: MaildCLI) -> None:
    policy = maild("sla", "due", "--policy", "itil-p1-p4", "--priority", "P3",
                   "--received", "2026-12-23T16:30")
    assert (policy.code, policy.stdout.strip()) == (0, "2026-12-24T17:00:00+01:00")
    inline = maild("sla", "due", "--hours", "mon-fri 09:00-17:00", "--holidays", "SE+de_facto",
                   "--tz", "Europe/Stockholm", "--target", "2h",
                   "--received", "2026-12-23T16:30")
    assert inline.stdout.strip() == "2026-12-28T10:30:00+01:00"
    around = maild("sla", "due", "--policy", "around-the-clock", "--priority", "important",
                   "--received", "2026-10-25T01:30+02:00")
    assert around.stdout.strip() == "2026-10-25T02:30:00+01:00", "2 h real time across DST"
    none = maild("sla", "due", "--policy", "no-agreement", "--received", "2026-11-23T10:00")
    assert none.stdout.strip() == "none"
    bad = maild("sla", "due", "--hours", "mnd-fri 09:00-17:00", "--target", "2h")
    assert bad.code == 1 and "mnd" in bad.stderr


def test_a_pass_after_new_tickets_looks_only_at_those_opened_since_the_last(
        sqlite_runtime: Runtime) -> None:
    """The daemon's pass after a processing pass: the new tickets, not every open one."""
    rules = sqlite_runtime.rules
    older = arrive(sqlite_runtime, support_mail(sender="karin@halsovaxeln.se",
                                                subject="Inloggning"), "2026-11-23T08:00")
    first = run_monitor(sqlite_runtime.engine, rules, at("2026-11-23T08:01"), "example.se")
    assert first.last_ticket_id == ticket(sqlite_runtime, older).id
    newer = arrive(sqlite_runtime, support_mail(sender="karin@halsovaxeln.se",
                                                subject="Utskrift"), "2026-11-23T08:02")
    # Both are past their response time now; the short pass sees the newer one only.
    short = run_monitor(sqlite_runtime.engine, rules, at("2026-11-24T17:01"), "example.se",
                        after_id=first.last_ticket_id)
    assert short.response_breaches == 1
    assert short.last_ticket_id == ticket(sqlite_runtime, newer).id
    assert ticket(sqlite_runtime, newer).response_breached_at is not None
    assert ticket(sqlite_runtime, older).response_breached_at is None
    full = run_monitor(sqlite_runtime.engine, rules, at("2026-11-24T17:02"), "example.se")
    assert full.response_breaches == 1, "the full pass finds the older one"
    nothing_new = run_monitor(sqlite_runtime.engine, rules, at("2026-11-24T17:03"),
                              "example.se", after_id=short.last_ticket_id)
    assert nothing_new.last_ticket_id == short.last_ticket_id
