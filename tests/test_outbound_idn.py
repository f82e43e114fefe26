"""Internationalised recipients are delivered, and one item that cannot be sent fails alone."""

from __future__ import annotations

from datetime import timedelta
from email import message_from_string
from email.policy import default
from pathlib import Path

from sqlmodel import Session, col, select

from maild.models import Outbox, utcnow
from maild.respond.outbox import flush_outbox
from maild.respond.wirecheck import wire_problems
from maild.runtime import Runtime, open_runtime
from tests.conftest import MaildCLI, make_config
from tests.mailmaker import support_mail
from tests.pipeline_helpers import filled, receive
from tests.sink import RecordingSink

A_LABEL = "xn--rksmrgs-5wao1o.se"


def _relay(port: int) -> dict[str, str]:
    return {"MAILD_OUTBOX_TRANSPORT": "smtp", "MAILD_OUTBOX_RELAY_HOST": "127.0.0.1",
            "MAILD_OUTBOX_RELAY_PORT": str(port), "MAILD_OUTBOX_RELAY_SECURITY": "none"}


def _relay_runtime(tmp_path: Path, port: int) -> Runtime:
    return open_runtime(make_config(tmp_path, **{
        key.removeprefix("MAILD_").lower().replace("outbox_", "outbox."): value
        for key, value in _relay(port).items()}))


def _item(runtime: Runtime, purpose: str) -> Outbox:
    with Session(runtime.engine) as session:
        return filled(session, [session.exec(
            select(Outbox).where(col(Outbox.purpose) == purpose)).one()])[0]


def test_ingest_delivers_the_acknowledgement_to_an_idn_customer_through_the_relay(
        maild: MaildCLI, sink: tuple[RecordingSink, int]) -> None:
    recorder, port = sink
    maild.env.update(_relay(port))
    mail = maild.cwd / "raksmorgas.eml"
    mail.write_bytes(support_mail(sender="Sven Ek <sven@räksmörgås.se>",
                                  subject="Beställningen syns inte"))
    result = maild("ingest", str(mail))
    assert result.code == 0, result.stderr
    assert "acknowledgements delivered 1, copies to teams 1" in result.stdout
    assert "outbox: nothing waiting" in result.stdout
    [ack] = [d for d in recorder.deliveries if d.recipients != ["webb@example.se"]]
    assert ack.recipients == [f"sven@{A_LABEL}"]
    assert ack.message["To"].addresses[0].addr_spec == f"sven@{A_LABEL}"
    assert b"=?utf-8?" not in ack.raw.split(b"\r\nTo:")[1].split(b"\r\n")[0]
    assert wire_problems(ack.raw) == []


def test_a_non_ascii_local_part_goes_by_smtputf8_when_the_relay_offers_it(
        tmp_path: Path, sink: tuple[RecordingSink, int]) -> None:
    recorder, port = sink
    runtime = _relay_runtime(tmp_path, port)
    receive(runtime, support_mail(sender="Björn <björn@räksmörgås.se>"))
    assert runtime.flush_outbox().sent == 2
    [ack] = [d for d in recorder.deliveries if d.recipients != ["webb@example.se"]]
    assert ack.recipients == [f"björn@{A_LABEL}"]
    utf8 = message_from_string(ack.raw.decode("utf-8"), policy=default)  # RFC 6532 header
    assert utf8["To"].addresses[0].addr_spec == f"björn@{A_LABEL}"
    assert wire_problems(ack.raw) == []


def test_without_smtputf8_only_that_item_fails_with_its_reason_and_the_rest_go(
        tmp_path: Path, sink_without_smtputf8: tuple[RecordingSink, int]) -> None:
    recorder, port = sink_without_smtputf8
    runtime = _relay_runtime(tmp_path, port)
    receive(runtime, support_mail(sender="Björn <björn@räksmörgås.se>"))
    receive(runtime, support_mail(sender="anna.lind@bergstromsbygg.se", subject="Annat fel",
                                  body="Kassan räknar fel moms sedan i går.\n"))
    report = runtime.flush_outbox()
    assert (report.sent, report.failed) == (3, 1)
    failed = [item for item in _all(runtime) if item.state == "failed"]
    assert [item.recipient for item in failed] == ["björn@räksmörgås.se"]
    assert "does not offer SMTPUTF8" in (failed[0].last_error or "")
    assert sorted(d.recipients[0] for d in recorder.deliveries) == [
        "anna.lind@bergstromsbygg.se", "webb@example.se", "webb@example.se"]


def _all(runtime: Runtime) -> list[Outbox]:
    with Session(runtime.engine) as session:
        return filled(session, session.exec(select(Outbox).order_by(col(Outbox.id))))


class _Picky:
    """Delivers everything except the item it is told to crash on."""

    def __init__(self, crash_on: str) -> None:
        self.crash_on = crash_on
        self.delivered: list[str] = []

    def deliver(self, item_id: int, raw: bytes, envelope_sender: str, recipient: str) -> str:
        if recipient == self.crash_on:
            raise RuntimeError("something nobody foresaw")
        self.delivered.append(recipient)
        return "ok"


def test_an_item_that_cannot_be_sent_fails_alone_and_the_pass_goes_on(
        runtime: Runtime, sink: tuple[RecordingSink, int]) -> None:
    recorder, port = sink
    recipients = ["a@example.se", "inte en adress", "b@example.se", "krasch@example.se",
                  "c@räksmörgås.se"]
    with Session(runtime.engine) as session:
        for index, recipient in enumerate(recipients):
            session.add(Outbox(purpose="ack", envelope_sender="", recipient=recipient,
                               message_id=f"m{index}@example.se", created_at=utcnow(),
                               raw=b"Subject: x\r\n\r\nx\r\n"))
        session.commit()
    from maild.config import RelaySettings
    from maild.respond.relay import SmtpRelayTransport

    relay = SmtpRelayTransport(RelaySettings(host="127.0.0.1", port=port, security="none"))
    report = flush_outbox(runtime.engine, relay, limit=10)
    assert (report.sent, report.failed) == (4, 1)
    assert sorted(d.recipients[0] for d in recorder.deliveries) == [
        "a@example.se", "b@example.se", f"c@{A_LABEL}", "krasch@example.se"]
    states = {item.recipient: (item.state, item.last_error) for item in _all(runtime)}
    assert states["inte en adress"][0] == "failed"
    assert "is not an address" in str(states["inte en adress"][1])
    with Session(runtime.engine) as session:
        crash = session.exec(select(Outbox).where(col(Outbox.recipient) == "krasch@example.se")
                             ).one()
        crash.state, crash.next_attempt_at = "queued", None
        session.add(crash)
        session.commit()
    picky = _Picky("krasch@example.se")
    again = flush_outbox(runtime.engine, picky, now=utcnow() + timedelta(seconds=1))
    assert again.retried == 1
    crashed = next(item for item in _all(runtime) if item.recipient == "krasch@example.se")
    assert crashed.state == "queued" and crashed.next_attempt_at is not None
    assert crashed.last_error == "unexpected: RuntimeError: something nobody foresaw"
