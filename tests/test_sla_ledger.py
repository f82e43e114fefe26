"""The monthly SLA ledger as the agreements count it: local months, the month a deadline was
missed, breaches cleared by a response given in time, events in the trail, money and minutes.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
from pathlib import Path
from typing import Any

from sqlmodel import Session, col, select

from maild.commands.common import Context
from maild.commands.sla import sla_report, ticket_respond
from maild.intake import store_inbound
from maild.models import Outbox, Ticket
from maild.runtime import Runtime
from maild.sla.monitor import run_monitor
from tests.conftest import MaildCLI
from tests.mailmaker import support_mail
from tests.pipeline_helpers import stockholm as at
from tests.pipeline_helpers import ticket_numbered as ticket


def arrive(runtime: Runtime, received: str, **mail: str) -> str:
    stored = store_inbound(runtime.engine, support_mail(**mail), transport="smtp",
                           received_at=at(received), recipients=["support@example.se"])
    outcome = runtime.processor().process_now(stored.inbound_id)
    assert outcome is not None and outcome.ticket is not None
    return outcome.ticket


def context_of(runtime: Runtime) -> Context:
    context = Context(runtime.config)
    context._runtime = runtime
    return context


def report(runtime: Runtime, month: str, **options: Any) -> dict[str, dict[str, Any]]:
    args = argparse.Namespace(month=month, customer=None, format="json",
                              uptime=options.get("uptime", []),
                              downtime=options.get("downtime", []))
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        sla_report(context_of(runtime), args)
    return {row["customer"]: row for row in json.loads(out.getvalue())["customers"]}


def test_a_case_at_half_past_midnight_on_1_december_is_a_december_case(
        sqlite_runtime: Runtime) -> None:
    arrive(sqlite_runtime, "2025-12-01T00:30", subject="Bokningen", body="Fel pris i kassan.\n")
    # 00:30 Swedish time is still 30 November in UTC; the agreement's month is Swedish.
    assert report(sqlite_runtime, "2025-12")["bergstroms-bygg"]["tickets"] == 1
    assert report(sqlite_runtime, "2025-11")["bergstroms-bygg"]["tickets"] == 0


def test_a_breach_belongs_to_the_month_its_deadline_was_missed(sqlite_runtime: Runtime) -> None:
    # Cloud Nine: "för den månad tidsgränserna överskridits". Friday 30 October, Normal is
    # due the next weekday, Monday 2 November 17:00, and is never answered.
    number = arrive(sqlite_runtime, "2026-10-30T10:00", subject="Nyhetssidan",
                    body="Nyhetssidan visar gamla nyheter.\n")
    assert ticket(sqlite_runtime, number).response_due == at("2026-11-02T17:00")
    october, november = report(sqlite_runtime, "2026-10"), report(sqlite_runtime, "2026-11")
    assert (october["bergstroms-bygg"]["tickets"], october["bergstroms-bygg"]["breaches"]) == (1, 0)
    assert (november["bergstroms-bygg"]["tickets"], november["bergstroms-bygg"]["breaches"]) \
        == (0, 1)
    assert (october["bergstroms-bygg"]["penalty_percent"],
            november["bergstroms-bygg"]["penalty_percent"]) == (0, 10)


def test_a_response_recorded_later_as_in_time_clears_the_breach(sqlite_runtime: Runtime,
                                                               maild: MaildCLI,
                                                               tmp_path: Path) -> None:
    number = arrive(sqlite_runtime, "2026-11-16T10:00", subject="Bokningen",
                    body="Fel pris i kassan.\n")
    run_monitor(sqlite_runtime.engine, sqlite_runtime.rules, at("2026-11-17T17:05"),
                "example.se")
    assert ticket(sqlite_runtime, number).response_breached_at == at("2026-11-17T17:00")
    assert report(sqlite_runtime, "2026-11")["bergstroms-bygg"]["breaches"] == 1
    # Eva answered by phone at 16:40 and records it the morning after.
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        ticket_respond(context_of(sqlite_runtime), argparse.Namespace(
            number=number, at="2026-11-17T16:40+01:00", by="eva"))
    assert "in time, so the breach is cleared" in out.getvalue()
    row = ticket(sqlite_runtime, number)
    assert row.response_breached_at is None
    november = report(sqlite_runtime, "2026-11")["bergstroms-bygg"]
    assert (november["breaches"], november["responded_in_time"]) == (0, 1)
    shown = maild("ticket", "show", number,
                  extra_env={"MAILD_DATA_DIR": str(tmp_path / "var")})
    assert "sla-breach" in shown.stdout and "breach-cleared" in shown.stdout


def test_a_missed_resolution_notifies_the_escalation_address(sqlite_runtime: Runtime,
                                                             maild: MaildCLI,
                                                             tmp_path: Path) -> None:
    # ITSL P3: response the next working day, resolution within 5 working days.
    number = arrive(sqlite_runtime, "2026-11-16T10:00", sender="karin@halsovaxeln.se",
                    subject="Fråga om exporten", body="Exporten saknar en kolumn.\n")
    row = ticket(sqlite_runtime, number)
    assert row.resolution_due == at("2026-11-23T17:00")
    with Session(sqlite_runtime.engine) as session:
        stored = session.exec(select(Ticket).where(col(Ticket.number) == number)).one()
        stored.first_response_at = at("2026-11-16T11:00")
        session.add(stored)
        session.commit()
    done = run_monitor(sqlite_runtime.engine, sqlite_runtime.rules, at("2026-11-23T17:01"),
                       "example.se")
    assert done.resolution_breaches == 1
    with Session(sqlite_runtime.engine) as session:
        sent = session.exec(select(Outbox).where(col(Outbox.purpose) == "escalation")).all()
    assert sorted(item.recipient for item in sent) == ["tjansteagare@example.se",
                                                        "utveckling@example.se"]
    again = run_monitor(sqlite_runtime.engine, sqlite_runtime.rules, at("2026-11-24T09:00"),
                        "example.se")
    assert again.resolution_breaches == 0
    shown = maild("ticket", "show", number, "--json",
                  extra_env={"MAILD_DATA_DIR": str(tmp_path / "var")})
    events = json.loads(shown.stdout)["events"]
    breach = [event for event in events if event["kind"] == "sla-breach"]
    assert [event["detail"]["target"] for event in breach] == ["resolution"]
    assert breach[0]["detail"]["notified"] == 2


def test_warnings_and_escalations_are_in_the_trail(sqlite_runtime: Runtime) -> None:
    number = arrive(sqlite_runtime, "2026-11-23T08:00", sender="karin@halsovaxeln.se",
                    subject="Inloggning", body="Inloggningen är långsam.\n")
    run_monitor(sqlite_runtime.engine, sqlite_runtime.rules, at("2026-11-24T13:30"),
                "example.se")
    run_monitor(sqlite_runtime.engine, sqlite_runtime.rules, at("2026-11-24T17:01"),
                "example.se")
    from maild.models import TicketEvent
    with Session(sqlite_runtime.engine) as session:
        row = session.exec(select(Ticket).where(col(Ticket.number) == number)).one()
        kinds = [(event.kind, event.detail.get("target")) for event in session.exec(
            select(TicketEvent).where(col(TicketEvent.ticket_id) == row.id)
            .order_by(col(TicketEvent.id)))]
    assert ("sla-warning", "response") in kinds and ("sla-breach", "response") in kinds


def test_the_rebate_is_money_capped_and_takes_minutes(sqlite_runtime: Runtime) -> None:
    # ClickSend: "<95 % 100 %", "dock högst $125"; the fee is 1 500 USD a month.
    low = report(sqlite_runtime, "2026-10", uptime=["nordic-parcel=94"])["nordic-parcel"]
    assert (low["penalty_percent"], low["penalty_amount"], low["currency"]) == (100, "125.00",
                                                                               "USD")
    assert "capped at 125 USD" in low["penalty_basis"]
    small = report(sqlite_runtime, "2026-10", uptime=["nordic-parcel=99.5"])["nordic-parcel"]
    assert (small["penalty_percent"], small["penalty_amount"]) == (5, "75.00")
    # 432 minutes of a 30-day month is exactly 99.0 %: "<100 %" gives 5 %; one more minute 10 %.
    assert report(sqlite_runtime, "2026-10", downtime=["nordic-parcel=432"])[
        "nordic-parcel"]["penalty_amount"] == "75.00"
    assert report(sqlite_runtime, "2026-10", downtime=["nordic-parcel=433"])[
        "nordic-parcel"]["penalty_amount"] == "125.00"
    assert low["tickets"] == 0, "a month without tickets is listed all the same"


def test_bad_measures_are_refused_in_one_line(maild: MaildCLI) -> None:
    for option, value, words in (
            ("--uptime", "nordic-parcel=101", "'101' for 'nordic-parcel' is not a percentage"),
            ("--uptime", "nordic-parcel=nan", "is not a percentage"),
            ("--uptime", "nordic-parcel", "is not CUSTOMER=PERCENT"),
            ("--uptime", "nobody=99", "no customer 'nobody'"),
            ("--downtime", "nordic-parcel=4.5", "is not a whole number of minutes"),
            ("--downtime", "nordic-parcel=-3", "is not a whole number of minutes")):
        result = maild("sla", "report", "--month", "2026-11", option, value)
        assert result.code == 1, (value, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and words in lines[0], result.stderr
        assert "Traceback" not in result.stderr
    month = maild("sla", "report", "--month", "2026-13")
    assert month.code == 1 and "is not a month" in month.stderr
