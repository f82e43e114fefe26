"""What maild sends through a relay: exact acknowledgements, retries, permanent failures."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlmodel import Session, col, select

from maild.models import Outbox, utcnow
from maild.respond.outbox import flush_outbox
from maild.respond.relay import SmtpRelayTransport
from maild.runtime import Runtime, open_runtime
from tests.conftest import make_config
from tests.mailmaker import support_mail
from tests.pipeline_helpers import receive
from tests.sink import RecordingSink


def _relay_runtime(tmp_path: Path, port: int) -> Runtime:
    return open_runtime(make_config(tmp_path, **{
        "outbox.transport": "smtp", "outbox.relay_host": "127.0.0.1",
        "outbox.relay_port": port, "outbox.relay_security": "none"}))


def _items(runtime: Runtime) -> list[Outbox]:
    with Session(runtime.engine) as session:
        return list(session.exec(select(Outbox).where(col(Outbox.purpose) == "ack")))


def test_acknowledgements_reach_the_relay_with_rfc3834_headers_in_both_languages(
        tmp_path: Path, sink: tuple[RecordingSink, int]) -> None:
    recorder, port = sink
    runtime = _relay_runtime(tmp_path, port)
    swedish = receive(runtime, support_mail(message_id="<sv-1@bergstromsbygg.se>"))
    english = receive(runtime, support_mail(
        sender="Tom Hughes <tom@nordicparcel.co.uk>", subject="Re: Fwd: Delivery reports",
        body="Hi, our delivery reports stopped this morning. Regards, Tom\n",
        message_id="<en-1@nordicparcel.co.uk>", authenticated=False))
    assert runtime.flush_outbox().sent_by_purpose["ack"] == 2
    [sv, en] = [d for d in recorder.deliveries if d.message["Auto-Submitted"] == "auto-replied"]
    assert sv.recipients == ["anna.lind@bergstromsbygg.se"]
    assert sv.sender.startswith("support+bounce-") and sv.sender.endswith("@example.se")
    # Tom's mail is not authenticated: his subject is not repeated to him.
    for delivery, ticket, subject in ((sv, swedish.ticket, "Bokningssidan visar fel pris"),
                                      (en, english.ticket, "We have received your case")):
        message = delivery.message
        assert message["Subject"] == f"[{ticket}] {subject}"
        assert message["Auto-Submitted"] == "auto-replied"
        assert message["X-Auto-Response-Suppress"] == "All"
        assert message["X-Maild-Loop"] == "example.se"
        assert message["Reply-To"] == "support@example.se"
        assert message["In-Reply-To"] in ("<sv-1@bergstromsbygg.se>", "<en-1@nordicparcel.co.uk>")
        assert message["Message-ID"].endswith("@example.se>")
    assert "registrerat det som ärende" in sv.message.get_content()
    assert "registered it as case" in en.message.get_content()
    assert all(item.state == "sent" and item.history[-1]["result"] == "sent"
               for item in _items(runtime))
    teams = {d.recipients[0] for d in recorder.deliveries} - {
        "anna.lind@bergstromsbygg.se", "tom@nordicparcel.co.uk"}
    assert teams == {"webb@example.se", "drift@example.se"}, "each queue's team got its copy"


def test_451_then_250_is_delivered_once(tmp_path: Path,
                                        sink: tuple[RecordingSink, int]) -> None:
    recorder, port = sink
    recorder.replies = {"anna.lind@bergstromsbygg.se": ["451 4.3.2 Try again later"]}
    runtime = _relay_runtime(tmp_path, port)
    receive(runtime, support_mail())
    first = runtime.flush_outbox()
    assert (first.sent_by_purpose.get("ack", 0), first.retried) == (0, 1)
    [item] = _items(runtime)
    assert item.state == "queued" and item.next_attempt_at is not None
    assert "451 4.3.2" in (item.last_error or "")
    assert runtime.flush_outbox().sent == 0, "the next attempt is not due yet"
    transport = SmtpRelayTransport(runtime.config.relay)  # type: ignore[arg-type]
    later = flush_outbox(runtime.engine, transport, now=utcnow() + timedelta(minutes=5))
    assert later.sent_by_purpose == {"ack": 1}
    acks = [d for d in recorder.deliveries if d.recipients == ["anna.lind@bergstromsbygg.se"]]
    assert len(acks) == 1 and recorder.attempts["anna.lind@bergstromsbygg.se"] == 2
    [item] = _items(runtime)
    assert item.state == "sent" and item.attempts == 2
    assert [entry["result"] for entry in item.history] == ["retried", "sent"]


def test_550_marks_the_acknowledgement_failed(tmp_path: Path,
                                              sink: tuple[RecordingSink, int]) -> None:
    recorder, port = sink
    recorder.replies = {"anna.lind@bergstromsbygg.se": [
        "550 5.1.1 <anna.lind@bergstromsbygg.se>: no such user"]}
    runtime = _relay_runtime(tmp_path, port)
    receive(runtime, support_mail())
    assert runtime.flush_outbox().failed == 1
    [item] = _items(runtime)  # the acknowledgement; the team's copy went through
    assert item.state == "failed"
    assert (item.last_error or "").startswith("permanent: 550 5.1.1")
    assert [d.recipients for d in recorder.deliveries] == [["webb@example.se"]]


def test_an_unreachable_relay_is_retried_until_the_lifetime_ends(tmp_path: Path) -> None:
    from tests.daemon_helpers import free_port

    runtime = _relay_runtime(tmp_path, free_port())
    receive(runtime, support_mail())
    assert runtime.flush_outbox().retried == 2  # the acknowledgement and the team's copy
    transport = SmtpRelayTransport(runtime.config.relay)  # type: ignore[arg-type]
    late = flush_outbox(runtime.engine, transport, now=utcnow() + timedelta(days=3))
    assert late.failed == 2
    [item] = _items(runtime)
    assert item.state == "failed" and "gave up after 2 attempts" in (item.last_error or "")
