"""Sender authentication (issue 11): what a forged From may no longer do.

maild believes only the Authentication-Results header (RFC 8601) that the
organisation's MTA (mx1.example.se in the shipped rules) wrote above its own
Received line. Each attack below worked before maild read that header.
"""

from __future__ import annotations

from datetime import timedelta
from email import message_from_bytes
from email.policy import default
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from sqlmodel import Session, col, select

from maild.models import Outbox, Ticket, TicketEvent
from maild.parse import parse_mail
from maild.routing.load import load_rules
from maild.runtime import Runtime
from maild.sla.monitor import run_monitor
from maild.trust import authresults
from maild.trust.authresults import parse_authentication_results
from maild.trust.evidence import believed_results
from maild.trust.verdict import assess
from tests.conftest import ROOT
from tests.mailmaker import support_mail
from tests.pipeline_helpers import filled, receive

RULES = load_rules(ROOT / "rules")
MX = "Received: from mail.evil.example (mail.evil.example [203.0.113.9]) by mx1.example.se " \
     "(Postfix) with ESMTPS id 4Xk9; Mon, 16 Nov 2026 10:12:03 +0100\r\n"


def with_results(results: str, raw: bytes, authserv_id: str = "mx1.example.se") -> bytes:
    """`raw` as the trusted MTA passes it on: its Authentication-Results above its Received."""
    return (f"Authentication-Results: {authserv_id}; {results}\r\n{MX}").encode() + raw


def forged(**kwargs: object) -> bytes:
    """A mail that came through the MTA without any authentication of its From."""
    return with_results("spf=none smtp.mailfrom=x@evil.example; dkim=none; dmarc=none",
                        support_mail(authenticated=False, **kwargs))  # type: ignore[arg-type]


def ticket_row(runtime: Runtime, number: str | None) -> Ticket:
    with Session(runtime.engine) as session:
        return session.exec(select(Ticket).where(col(Ticket.number) == number)).one()


def outbox(runtime: Runtime, purpose: str | None = None) -> list[Outbox]:
    with Session(runtime.engine) as session:
        query = select(Outbox).order_by(col(Outbox.id))
        if purpose:
            query = query.where(col(Outbox.purpose) == purpose)
        return filled(session, session.exec(query))


# --- RFC 8601 parsing and which headers are believed ------------------------------------


def test_a_header_with_comments_quotes_versions_and_several_methods() -> None:
    parsed = parse_authentication_results(
        'mx1.example.se 1; spf=pass (mx1.example.se: 192.0.2.1 is permitted) '
        'smtp.mailfrom=anna@bergstromsbygg.se; dkim = pass (2048-bit key) reason="good '
        'signature" header.d=bergstromsbygg.se header.b=Ab+/x=; dmarc=pass (p=reject '
        'dis=none) header.from=BergstromsBygg.se')
    assert parsed is not None and parsed.authserv_id == "mx1.example.se"
    spf, dkim, dmarc = parsed.results
    assert (spf.method, spf.result, spf.property("smtp.mailfrom")) == (
        "spf", "pass", "anna@bergstromsbygg.se")
    assert (dkim.result, dkim.reason, dkim.property("header.d")) == (
        "pass", "good signature", "bergstromsbygg.se")
    assert dmarc.property("header.from") == "bergstromsbygg.se"


def test_no_result_and_unreadable_headers() -> None:
    none = parse_authentication_results("mx1.example.se; none")
    assert none is not None and none.results == ()
    for broken in ("", "mx1.example.se; dkim", "mx1.example.se; (unclosed",
                   "x; " + "(" * 600 + "a" + ")" * 600, "a b c; spf=pass",
                   "mx1.example.se; spf=pass " + "x" * 9000):
        assert parse_authentication_results(broken) is None, broken


def _headers(raw: bytes) -> tuple[tuple[str, str], ...]:
    return parse_mail(raw).headers


def test_only_the_trusted_mta_above_its_received_line_is_believed() -> None:
    pass_for_anna = "dmarc=pass header.from=bergstromsbygg.se"
    # another authserv-id: ignored
    evidence = believed_results(_headers(with_results(pass_for_anna, support_mail(
        authenticated=False), authserv_id="mx.evil.example")), RULES.trust)
    assert evidence.results == () and "not a trusted authserv-id" in evidence.ignored[0]
    # the forger wrote the trusted id himself, below the MTA's Received line
    raw = with_results("dmarc=none", support_mail(authenticated=False, headers={
        "Authentication-Results": f"mx1.example.se; {pass_for_anna}"}))
    evidence = believed_results(_headers(raw), RULES.trust)
    assert [r.result for r in evidence.results] == ["none"]
    assert "below the trusted MTA's Received line" in evidence.ignored[0]
    # maild's own Received line (SMTP intake) stands above the MTA's header: not counted
    ours = b"Received: from mx1.example.se ([192.0.2.2])\r\n\tby maild.example.se (maild) " \
           b"with LMTP; Mon, 16 Nov 2026 10:12:04 +0100\r\n"
    evidence = believed_results(_headers(ours + with_results(pass_for_anna, support_mail(
        authenticated=False))), RULES.trust)
    assert [r.method for r in evidence.results] == ["dmarc"]


def test_received_hops_lets_the_organisations_own_relays_stand_above() -> None:
    raw = b"Received: from mx1.example.se by filter.example.se (Postfix); " \
          b"Mon, 16 Nov 2026 10:12:04 +0100\r\n" + with_results(
              "dmarc=pass header.from=bergstromsbygg.se", support_mail(authenticated=False))
    assert believed_results(_headers(raw), RULES.trust).results == ()
    hop = type(RULES.trust)(authserv_ids=RULES.trust.authserv_ids, received_hops=1)
    assert len(believed_results(_headers(raw), hop).results) == 1


def test_dmarc_must_pass_for_the_from_domain_itself() -> None:
    # The attacker's own domain passes DMARC, but the From claims a customer's address.
    raw = with_results("spf=pass smtp.mailfrom=x@evil.example; dkim=pass header.d=evil.example;"
                       " dmarc=pass header.from=evil.example", support_mail(authenticated=False))
    trust = assess(parse_mail(raw), "anna.lind@bergstromsbygg.se", RULES)
    assert not trust.trusted and trust.to_json()["dmarc"] == "pass"
    trusted = assess(parse_mail(support_mail()), "anna.lind@bergstromsbygg.se", RULES)
    assert trusted.trusted and trusted.via == "dmarc"


def test_a_customer_without_dmarc_is_trusted_by_the_path_its_rules_name() -> None:
    # lindqvist-logistik.toml: authenticated_by = ["dkim"] (no DMARC record, DKIM-signed)
    dkim_only = "spf=softfail smtp.mailfrom=per.olsson@lindqvistlogistik.se; dkim=pass " \
                "header.d=lindqvistlogistik.se; dmarc=none header.from=lindqvistlogistik.se"
    mail = parse_mail(with_results(dkim_only, support_mail(
        authenticated=False, sender="per.olsson@lindqvistlogistik.se")))
    trust = assess(mail, "per.olsson@lindqvistlogistik.se", RULES)
    assert trust.trusted and trust.via == "dkim"
    # the same evidence proves nothing for a customer whose rules name no such path
    mail = parse_mail(with_results(dkim_only.replace("lindqvistlogistik.se", "halsovaxeln.se"),
                                   support_mail(authenticated=False,
                                                sender="karin@halsovaxeln.se")))
    assert not assess(mail, "karin@halsovaxeln.se", RULES).trusted


# --- The attacks of issue 11 ------------------------------------------------------------


def test_a_forged_staff_reply_does_not_answer_the_ticket(runtime: Runtime) -> None:
    opened = receive(runtime, support_mail())
    reply = {"sender": "Kim Support <kim@example.se>", "subject": f"SV: [{opened.ticket}] "
                 "Bokningssidan visar fel pris", "body": "Hej! Nu är det åtgärdat.\n"}
    attack = receive(runtime, forged(**reply))
    ticket = ticket_row(runtime, opened.ticket)
    assert ticket.first_response_at is None and ticket.status != "answered"
    assert attack.kind == "new" and attack.ticket != opened.ticket
    assert ticket_row(runtime, attack.ticket).refers_to == opened.ticket
    # a reply maild may not attach is not answered: no loop, nothing told to a forger
    assert [item.ticket_id for item in outbox(runtime, "ack")] == [
        ticket_row(runtime, opened.ticket).id]
    # the real colleague, submitted with SMTP AUTH to our own MTA ([staff] authenticated_by)
    real = receive(runtime, with_results("auth=pass smtp.auth=kim@example.se",
                                         support_mail(authenticated=False, **reply)))
    assert real.kind == "followup" and real.ticket == opened.ticket
    answered = ticket_row(runtime, opened.ticket)
    assert answered.status == "answered" and answered.first_response_at is not None


def test_fifty_forged_p1_mails_make_no_p1_and_no_escalation(sqlite_runtime: Runtime) -> None:
    outage = {"sender": "Karin Öberg <karin.oberg@halsovaxeln.se>", "subject": "Driftstopp",
                  "body": "Tjänsten ligger nere, ingen kommer åt något.\n"}
    numbers = [receive(sqlite_runtime, forged(**outage)).ticket for _ in range(50)]
    tickets = [ticket_row(sqlite_runtime, number) for number in numbers]
    assert len(set(numbers)) == 50
    assert {t.priority for t in tickets} == {"P4"}
    assert {t.response_due for t in tickets} == {None}
    later = tickets[0].created_at + timedelta(days=3)
    run_monitor(sqlite_runtime.engine, sqlite_runtime.rules, later, "example.se")
    assert outbox(sqlite_runtime, "escalation") == []
    # one authenticated outage is P1 and escalates at once to both addresses (ITSL)
    real = receive(sqlite_runtime, support_mail(**outage))  # type: ignore[arg-type]
    opened = ticket_row(sqlite_runtime, real.ticket)
    assert opened.priority == "P1"
    # a minute after it opened: escalated on open, no deadline missed yet
    run_monitor(sqlite_runtime.engine, sqlite_runtime.rules,
                opened.created_at + timedelta(minutes=1), "example.se")
    assert sorted(item.recipient for item in outbox(sqlite_runtime, "escalation")) == [
        "tjansteagare@example.se", "utveckling@example.se"]


def test_a_forged_cc_makes_no_outsider_a_participant(runtime: Runtime) -> None:
    attack = receive(runtime, forged(headers={"Cc": "Mallory <mallory@evil.example>"}))
    assert ticket_row(runtime, attack.ticket).participants == ["anna.lind@bergstromsbygg.se"]
    # Mallory, authenticated as herself, cannot join the ticket she was "copied" on
    join = receive(runtime, support_mail(sender="mallory@evil.example",
                                         subject=f"Re: [{attack.ticket}] Bokningssidan",
                                         body="Skicka mig kundlistan.\n"))
    assert join.kind == "new" and join.ticket != attack.ticket
    # an authenticated sender's Cc does make a colleague a participant
    real = receive(runtime, support_mail(headers={"Cc": "per@bergstromsbygg.se"}))
    assert "per@bergstromsbygg.se" in ticket_row(runtime, real.ticket).participants


def test_a_forged_completion_neither_completes_nor_confirms_to_the_forger(
        sqlite_runtime: Runtime) -> None:
    opened = receive(sqlite_runtime, support_mail(subject="Kassan", body="Kassan fungerar "
                                                  "inte.\n"))
    before = ticket_row(sqlite_runtime, opened.ticket)
    assert before.missing  # Care asks for screenshot, time, browser and OS
    attack = receive(sqlite_runtime, forged(
        subject=f"Re: [{opened.ticket}] Kassan", headers={"Reply-To": "attacker@evil.example"},
        body="Det hände i dag kl 10:15 i Chrome 131 på Windows 11. Skärmbild bifogad.\n"))
    assert attack.ticket != opened.ticket
    assert ticket_row(sqlite_runtime, opened.ticket).missing == before.missing
    assert outbox(sqlite_runtime, "confirmation") == []
    to_forger = [item for item in outbox(sqlite_runtime)
                 if item.recipient == "attacker@evil.example"]
    for item in to_forger:
        text = message_from_bytes(item.raw, policy=default).get_body(  # type: ignore[union-attr]
            ("plain",)).get_content()
        assert str(opened.ticket) not in text and "Bergströms" not in text


def test_the_decision_record_says_what_the_mta_found(maild: object, tmp_path: Path) -> None:
    path = tmp_path / "forged.eml"
    path.write_bytes(forged(subject="[High] Kassan"))
    result = maild("route", "--json", str(path))  # type: ignore[operator]
    import json

    record = json.loads(result.stdout)
    assert record["trust"]["trusted"] is False
    assert (record["trust"]["spf"], record["trust"]["dkim"], record["trust"]["dmarc"]) == (
        "none", "none", "none")
    assert record["trust"]["authserv_id"] == ["mx1.example.se"]
    assert record["entitlement"]["status"] == "unauthenticated"
    assert (record["priority"], record["response_due"]) == ("Normal", None)
    assert record["priority_requested"] == "High"
    path.write_bytes(support_mail(subject="[High] Kassan"))
    record = json.loads(maild("route", "--json", str(path)).stdout)  # type: ignore[operator]
    assert record["trust"]["trusted"] is True and record["trust"]["via"] == "dmarc"
    assert record["priority"] == "High" and record["response_due"] is not None


def test_events_are_recorded_only_for_the_real_staff(sqlite_runtime: Runtime) -> None:
    opened = receive(sqlite_runtime, support_mail())
    receive(sqlite_runtime, forged(sender="kim@example.se",
                                   subject=f"SV: [{opened.ticket}] Bokningssidan"))
    with Session(sqlite_runtime.engine) as session:
        ticket = ticket_row(sqlite_runtime, opened.ticket)
        kinds = [event.kind for event in session.exec(
            select(TicketEvent).where(col(TicketEvent.ticket_id) == ticket.id))]
    assert "response" not in kinds


@settings(max_examples=4000, deadline=None)
@given(st.lists(st.sampled_from(
    [*'ab=.;;  ()()"\\\t', "\u00a0", "\u2003", "\n", "dkim", "pass", "(p=reject)"]),
    max_size=40).map("".join))
def test_a_value_is_split_as_the_character_reader_splits_it(value: str) -> None:
    """The split of values without quotes or nested comments is the character reader's."""
    try:
        expected: object = authresults._read_segments(value)
    except authresults._Unreadable:
        expected = "unreadable"
    try:
        found: object = authresults._segments(value)
    except authresults._Unreadable:
        found = "unreadable"
    assert found == expected
