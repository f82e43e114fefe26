"""Every mail maild composes is RFC 5322 clean, whatever the customer's mail held."""

from __future__ import annotations

from datetime import UTC, datetime
from email import message_from_bytes
from email.policy import default
from email.utils import format_datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlmodel import Session, col, select

from maild.models import Outbox, Ticket
from maild.respond import wire
from maild.respond.address import UnusableAddress, mail_address
from maild.respond.wirecheck import wire_problems
from maild.runtime import Runtime
from maild.sla.monitor import run_monitor
from tests.conftest import FIXTURES
from tests.mailmaker import authenticated_headers, support_mail
from tests.pipeline_helpers import filled, receive


def _items(runtime: Runtime, purpose: str | None = None) -> list[Outbox]:
    with Session(runtime.engine) as session:
        query = select(Outbox).order_by(col(Outbox.id))
        if purpose:
            query = query.where(col(Outbox.purpose) == purpose)
        return filled(session, session.exec(query))


def _raw_mail(head: str, body: bytes = b"Hej!\nFel i kassan sedan i morse.\n",
              newline: bytes = b"\n") -> bytes:
    return newline.join(head.encode("utf-8").split(b"\n")) + newline + newline + body


# -- the validator fails on what was produced before --------------------------------------

def test_the_validator_names_each_problem_of_a_dirty_mail() -> None:
    clean = (b"From: support@example.se\r\nTo: anna@example.se\r\nDate: Mon, 30 Nov 2026 "
             b"10:00:00 +0000\r\nMessage-ID: <a@example.se>\r\nSubject: Hej\r\n\r\nHej\r\n")
    assert wire_problems(clean) == []
    assert "a line ends in a bare LF" in wire_problems(clean.replace(b"\r\n", b"\n", 1))
    long_subject = clean.replace(b"Subject: Hej", b"Subject: " + b"x" * 1200)
    assert "a line of 1209 octets (at most 998)" in wire_problems(long_subject)
    encoded = clean.replace(b"To: anna@example.se",
                            b"To: =?utf-8?b?c3ZlbkByw6Rrc23DtnJnw6VzLnNl?=")
    assert any("To:" in problem for problem in wire_problems(encoded))
    assert "0 message-id fields (exactly one)" in wire_problems(
        clean.replace(b"Message-ID: <a@example.se>\r\n", b""))


# -- acknowledgements -----------------------------------------------------------------------

HOSTILE_SUBJECTS = [
    "Å" * 16_385,                                   # 32 kB of UTF-8 in one word
    "x" * 16_385,                                   # one ASCII word longer than any line
    "Fel " * 4_000,                                 # many short words
    "=?utf-8?q?not_an_encoded_word?= [MD-2026-00001-4] tab\there\x00 and a NUL",
    "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 🎉 ärende " * 300,                 # four-octet characters
]


@pytest.mark.parametrize("subject", HOSTILE_SUBJECTS, ids=range(len(HOSTILE_SUBJECTS)))
def test_an_acknowledgement_of_a_hostile_subject_is_clean_and_keeps_its_text(
        sqlite_runtime: Runtime, subject: str) -> None:
    # Anna's mail is authenticated by the organisation's MTA: her own subject comes back.
    trusted = "".join(f"{name}: {value}\n" for name, value in
                      authenticated_headers("anna.lind@bergstromsbygg.se"))
    raw = _raw_mail(f"{trusted}From: Anna Lind <anna.lind@bergstromsbygg.se>\n"
                    "To: support@example.se\n"
                    f"Subject: {subject}\nMessage-ID: <hostile@bergstromsbygg.se>\n"
                    "Content-Type: text/plain; charset=utf-8")
    outcome = receive(sqlite_runtime, raw)
    [ack] = _items(sqlite_runtime, "ack")
    assert wire_problems(ack.raw) == []
    parsed = message_from_bytes(ack.raw, policy=default)
    shown = str(parsed["Subject"])
    assert shown.startswith(f"[{outcome.ticket}] ")
    assert len(shown) <= wire.TEXT_LIMIT
    assert "\n" not in shown and "\x00" not in shown
    assert subject.rsplit(maxsplit=1)[-1][:10] in shown or subject[:10] in shown


def test_an_idn_recipient_is_an_a_label_address_in_to_never_an_encoded_word(
        sqlite_runtime: Runtime) -> None:
    receive(sqlite_runtime, support_mail(sender="Sven Ö <sven@räksmörgås.se>"))
    [ack] = _items(sqlite_runtime, "ack")
    assert wire_problems(ack.raw) == []
    assert b"\r\nTo: sven@xn--rksmrgs-5wao1o.se\r\n" in ack.raw
    assert ack.recipient == "sven@räksmörgås.se"


def test_an_address_too_long_for_mail_gets_no_acknowledgement_but_its_ticket(
        sqlite_runtime: Runtime) -> None:
    # Read as an address (up to MAX_LOCAL characters), but 200 octets: no SMTP server
    # takes a local part over 64 (one longer than MAX_LOCAL is no address at all).
    sender = "å" * 100 + "@bergstromsbygg.se"
    raw = support_mail().replace(b"Anna Lind <anna.lind@bergstromsbygg.se>",
                                 f"<{sender}>".encode())
    outcome = receive(sqlite_runtime, raw)
    assert outcome.state == "processed"
    assert _items(sqlite_runtime, "ack") == []
    with Session(sqlite_runtime.engine) as session:
        ticket = session.exec(select(Ticket)).one()
        assert ticket.decision is not None and ticket.decision["ack"] is False
        assert "longer than 64 octets" in ticket.decision["ack_reason"]
    for item in _items(sqlite_runtime):
        assert wire_problems(item.raw) == []
        assert sender.encode() not in item.raw.split(b"\r\n\r\n")[0]


# -- team copies and escalations --------------------------------------------------------------

def test_a_team_copy_of_a_bare_lf_original_has_crlf_line_endings_everywhere(
        sqlite_runtime: Runtime) -> None:
    raw = _raw_mail("From: Anna Lind <anna.lind@bergstromsbygg.se>\nTo: support@example.se\n"
                    "Subject: Bokningen\nMessage-ID: <lf@bergstromsbygg.se>\n"
                    "Content-Type: text/plain; charset=utf-8\n"
                    "Content-Transfer-Encoding: 8bit",
                    "Hej!\nKassan visar fel pris på söndagar.\r\nMvh Anna\n".encode())
    receive(sqlite_runtime, raw)
    [team] = _items(sqlite_runtime, "team")
    assert wire_problems(team.raw) == []
    assert b"Kassan visar fel pris p\xc3\xa5 s\xc3\xb6ndagar.\r\nMvh Anna\r\n" in team.raw
    attached = next(p for p in message_from_bytes(team.raw, policy=default).walk()
                    if p.get_content_type() == "message/rfc822")
    assert attached["Content-Transfer-Encoding"] == "8bit"


def test_a_team_copy_of_an_original_with_overlong_lines_attaches_it_as_a_file(
        sqlite_runtime: Runtime) -> None:
    body = ("Loggutdrag: " + "ERR " * 700 + "\n").encode()
    raw = _raw_mail("From: anna.lind@bergstromsbygg.se\nTo: support@example.se\n"
                    "Subject: Logg\nMessage-ID: <long@bergstromsbygg.se>", body)
    receive(sqlite_runtime, raw)
    [team] = _items(sqlite_runtime, "team")
    assert wire_problems(team.raw) == []
    message = message_from_bytes(team.raw, policy=default)
    [file] = [part for part in message.walk() if part.get_filename() == "original.eml"]
    assert file.get_content_type() == "application/octet-stream"
    assert file.get_content() == raw, "the original is carried byte for byte"


def test_a_team_copy_of_an_original_with_comments_nested_too_deep_attaches_it_as_a_file(
        sqlite_runtime: Runtime) -> None:
    """A reader's parser would recurse on each level of the original's header comments."""
    raw = _raw_mail("From: anna.lind@bergstromsbygg.se\nTo: support@example.se\n"
                    "Subject: Fel pris\nMessage-ID: <deep@bergstromsbygg.se>\n"
                    "Content-Type: text/plain" + "(" * 600,
                    b"Kassan visar fel pris.\n")
    receive(sqlite_runtime, raw)
    [team] = _items(sqlite_runtime, "team")
    assert wire_problems(team.raw) == []
    message = message_from_bytes(team.raw, policy=default)  # no RecursionError
    [file] = [part for part in message.walk() if part.get_filename() == "original.eml"]
    assert file.get_content_type() == "application/octet-stream"
    assert file.get_content() == raw, "the original is carried byte for byte"


def test_a_team_copy_of_a_message_carrying_deep_comments_folded_attaches_it_as_a_file(
        sqlite_runtime: Runtime) -> None:
    """Deep comments in a forwarded message's header, folded over lines, are found too."""
    folded = "\n".join(" " + "(" * 20 for _ in range(30))
    inner = ("From: ove@kund.se\nSubject: Vidarebefordrat\n"
             f"Content-Type: text/plain\n{folded}\n\nHej\n")
    raw = _raw_mail("From: anna.lind@bergstromsbygg.se\nTo: support@example.se\n"
                    "Subject: Fel pris\nMessage-ID: <fwd@bergstromsbygg.se>\n"
                    "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b",
                    b"--b\nContent-Type: text/plain\n\nSe nedan.\n--b\n"
                    b"Content-Type: message/rfc822\n\n" + inner.encode() + b"--b--\n")
    receive(sqlite_runtime, raw)
    [team] = _items(sqlite_runtime, "team")
    assert wire_problems(team.raw) == []
    message = message_from_bytes(team.raw, policy=default)
    for part in message.walk():  # reading every part's type recursed on the old copy
        part.get_content_type()
    [file] = [part for part in message.walk() if part.get_filename() == "original.eml"]
    assert file.get_content_type() == "application/octet-stream"
    assert file.get_content() == raw


def test_a_team_copy_of_an_original_with_mime_nested_too_deep_attaches_it_as_a_file(
        sqlite_runtime: Runtime) -> None:
    """maild reads the header of a mail whose parts nest too deep; a reader would recurse."""
    inner = b"Content-Type: text/plain\r\n\r\nKassan visar fel pris.\r\n"
    for level in range(1200):
        inner = (b'Content-Type: multipart/mixed; boundary="b%d"\r\n\r\n--b%d\r\n' % (
            level, level) + inner + b"\r\n--b%d--\r\n" % level)
    raw = (b"From: anna.lind@bergstromsbygg.se\r\nTo: support@example.se\r\n"
           b"Subject: Fel pris\r\nMessage-ID: <nested@bergstromsbygg.se>\r\n"
           b"MIME-Version: 1.0\r\n" + inner)
    receive(sqlite_runtime, raw)
    [team] = _items(sqlite_runtime, "team")
    message = message_from_bytes(team.raw, policy=default)  # RecursionError on the old copy
    [file] = [part for part in message.walk() if part.get_filename() == "original.eml"]
    assert file.get_content_type() == "application/octet-stream"
    assert file.get_content() == raw


@pytest.mark.parametrize(("lines", "deep"), [
    (b"Subject: " + b"(" * 33, True),
    (b"Subject: " + b"(" * 32 + b")" * 32, False),
    (b"Subject: x\r\n" + b"\r\n".join([b" " + b"(" * 11] * 3), True),  # folded: 33
    (b"Subject: x\r\n\r\n" + b"\r\n".join([b"(" * 11] * 3), False),  # body lines
    (b"A: " + b"(" * 20 + b"\r\nB: " + b"(" * 20, False),  # two fields
    (b"Subject: " + b"()" * 400, False),
])
def test_comments_too_deep_are_told_from_many_or_separate_ones(lines: bytes, deep: bool) -> None:
    assert wire.comments_nest_too_deep(lines) is deep


def test_every_mail_composed_for_the_sample_mails_and_their_escalations_is_clean(
        sqlite_runtime: Runtime) -> None:
    from datetime import timedelta

    from maild.models import utcnow

    for path in sorted(FIXTURES.glob("*.eml")):
        receive(sqlite_runtime, path.read_bytes())
    receive(sqlite_runtime, support_mail(sender="Karin <karin@halsovaxeln.se>",
                                         subject="Inloggning " + "ö" * 5000))
    later = utcnow() + timedelta(days=40)  # every response deadline has passed
    assert run_monitor(sqlite_runtime.engine, sqlite_runtime.rules, later, "example.se").escalated
    items = _items(sqlite_runtime)
    purposes = {item.purpose for item in items}
    assert {"ack", "team", "escalation"} <= purposes
    dirty = {item.id: wire_problems(item.raw) for item in items if wire_problems(item.raw)}
    assert dirty == {}


# -- the rules themselves -------------------------------------------------------------------------

def test_display_names_are_encoded_and_bounded_and_addresses_stay_addresses() -> None:
    field = wire.addresses("To", [("Åsa \"Chefen\" Öberg, VD" * 1000, "asa@räksmörgås.se"),
                                  ('Eva "E" Lind', "eva@example.se")])
    raw = (field + "\r\nFrom: a@example.se\r\nDate: x\r\nMessage-ID: <m@x>\r\n\r\n").encode()
    assert wire_problems(raw) == []
    parsed = message_from_bytes(raw, policy=default)
    first, second = parsed["To"].addresses
    assert first.addr_spec == "asa@xn--rksmrgs-5wao1o.se"
    assert first.display_name.startswith('Åsa "Chefen" Öberg, VD')
    assert (second.display_name, second.addr_spec) == ('Eva "E" Lind', "eva@example.se")


@pytest.mark.parametrize(("text", "reason"), [
    ("no-at-sign", "is not an address"),
    ("anna@", "is not an address"),
    ("a" * 65 + "@example.se", "longer than 64 octets"),
    ("anna@" + "a" * 250 + ".se", "not a valid domain name"),
    ("anna\r\nBcc: x@y.se@example.se", "control characters"),
    ("anna@exa mple.se", "not a valid domain name"),
    ("anna@xn--.se", "not a valid"),
])
def test_an_address_that_cannot_be_written_says_why(text: str, reason: str) -> None:
    with pytest.raises(UnusableAddress, match=reason):
        mail_address(text)


def test_internationalised_addresses_keep_their_local_part_and_get_an_a_label() -> None:
    assert str(mail_address("Björn@Räksmörgås.SE")) == "Björn@xn--rksmrgs-5wao1o.se"
    assert mail_address("björn@räksmörgås.se").needs_smtputf8
    assert not mail_address("<sven@räksmörgås.se>").needs_smtputf8
    assert str(mail_address('"john smith"@example.se')) == '"john smith"@example.se'


def test_a_huge_text_header_is_folded_into_short_lines() -> None:
    folded = wire.unstructured("Subject", "ä" * 100_000, limit=100_000)
    lines = folded.split("\r\n")
    assert max(len(line) for line in lines) <= wire.FOLD
    assert str(message_from_bytes((folded + "\r\n\r\n").encode(), policy=default)[
        "Subject"]) == "ä" * 100_000


def test_a_long_loop_marker_and_message_id_are_written_as_they_are() -> None:
    domain = "support." + "a" * 70 + ".example.se"
    assert wire.token("X-Maild-Loop", domain) == f"X-Maild-Loop: {domain}"
    assert (wire.message_ids("Message-ID", [f"maild.1@{domain}"])
            == f"Message-ID: <maild.1@{domain}>")
    assert wire.message_ids("In-Reply-To", ["bad id with spaces", "<x\r\ny@z>"]) is None


def _long_line_by_line(lines: bytes) -> bool:
    """The definition, one line at a time: a line without its CRLF over 998 octets."""
    *ended, last = lines.split(b"\n")
    return any(len(line) - 1 > wire.LINE_LIMIT for line in ended) or len(last) > wire.LINE_LIMIT


@given(st.lists(st.integers(min_value=0, max_value=80) | st.integers(min_value=995,
                                                                   max_value=1002),
                max_size=12), st.booleans())
def test_a_long_line_is_found_wherever_it_is(lengths: list[int], ended: bool) -> None:
    lines = b"\r\n".join(b"x" * length for length in lengths) + (b"\r\n" if ended else b"")
    assert wire.has_long_line(lines) == _long_line_by_line(lines)


def test_the_date_header_names_the_time_of_the_zone_it_is_given_in() -> None:
    """Written once per moment, the header still follows the zone: one instant in UTC and
    in Stockholm compares equal, but each header names its own zone's time."""
    utc = datetime(2026, 11, 16, 9, 0, tzinfo=UTC)
    stockholm = utc.astimezone(ZoneInfo("Europe/Stockholm"))
    assert utc == stockholm
    for moment in (utc, stockholm, utc, stockholm):
        assert wire.date(moment) == wire.token("Date", format_datetime(moment))
    assert wire.date(utc).endswith("09:00:00 +0000")
    assert wire.date(stockholm).endswith("10:00:00 +0100")
