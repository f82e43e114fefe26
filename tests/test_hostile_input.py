"""Hostile input: one bad value degrades alone, and no nesting depth crashes the parser.

Each message here is readable apart from one value (a NUL in a charset name, a
broken encoded word as a file name) or nests deeper than the standard library's
recursive parsers can follow; each must become a ticket with what could be
read, never a quarantined message or a traceback.
"""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import pytest

from maild.classify.sender import MAX_DOMAIN, parent_domains, registrable_domain
from maild.parse import MAX_COMMENT_NESTING, parse_mail
from maild.runtime import Runtime
from tests.conftest import MaildCLI
from tests.pipeline_helpers import inbound, receive, tickets

HEAD = (b"From: Anna Lind <anna.lind@bergstromsbygg.se>\r\nTo: support@example.se\r\n"
        b"Message-ID: <hostile-1@bergstromsbygg.se>\r\n")


def _mixed(attachment_headers: bytes, text_headers: bytes = b"Content-Type: text/plain\r\n"
           ) -> bytes:
    return (HEAD + b"Subject: Bokningen\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: multipart/mixed; boundary=XX\r\n\r\n--XX\r\n" + text_headers +
            b"\r\nBokningssidan visar fel pris.\r\n--XX\r\n" + attachment_headers +
            b"Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n--XX--\r\n")


NUL_CHARSET = (HEAD + b"Subject: Bokningen\r\nContent-Type: text/plain; charset=\"utf\x00-8\"\r\n"
               b"Content-Transfer-Encoding: base64\r\n\r\n"
               b"Qm9rbmluZ3NzaWRhbiB2aXNhciBmZWwgcHJpcy4=\r\n")
BROKEN_FILENAME = _mixed(b"Content-Type: application/pdf\r\n"
                         b"Content-Disposition: attachment; filename=\"=?utf-8?B?A?=\"\r\n")
NUL_IN_RFC2231_FILENAME = _mixed(b"Content-Type: application/pdf; "
                                 b"name=\"=?utf\x00-8?q?a.pdf?=\"\r\n"
                                 b"Content-Disposition: attachment; filename*=utf\x00-8''"
                                 b"offert%E4.pdf\r\n")
NUL_CHARSET_IN_A_PART = _mixed(b"Content-Type: application/pdf\r\n",
                               b"Content-Type: text/plain; charset=\"iso\x00-8859-1\"\r\n")


@pytest.mark.parametrize("raw", [NUL_CHARSET, BROKEN_FILENAME, NUL_IN_RFC2231_FILENAME,
                                 NUL_CHARSET_IN_A_PART],
                         ids=["nul-charset", "broken-filename", "nul-rfc2231", "nul-part"])
def test_one_bad_value_keeps_the_rest_readable(raw: bytes) -> None:
    mail = parse_mail(raw)
    assert mail.sender is not None and mail.sender.address == "anna.lind@bergstromsbygg.se"
    assert mail.subject == "Bokningen"
    assert "Bokningssidan visar fel pris." in mail.text
    assert "\x00" not in mail.text


def test_broken_encoded_word_file_name_is_kept_as_written() -> None:
    mail = parse_mail(BROKEN_FILENAME)
    assert [a.filename for a in mail.attachments] == ["=?utf-8?B?A?="]


def test_nul_in_a_charset_name_of_an_encoded_word_keeps_the_subject() -> None:
    mail = parse_mail(HEAD + b"Subject: =?utf\x00-8?q?Bokningen?=\r\n\r\nText\r\n")
    assert mail.subject == "Bokningen"


@pytest.mark.parametrize("header", [b"From", b"Subject", b"Reply-To", b"Date", b"Content-Type",
                                    b"X-Anything"])
def test_600_nested_comments_in_any_header_do_not_crash(header: bytes) -> None:
    lines = {b"From": b"From: anna.lind@bergstromsbygg.se\r\n", b"Subject": b"Subject: Hej\r\n"}
    lines[header] = header + b": " + b"(" * 600 + b"anna.lind@bergstromsbygg.se\r\n"
    raw = b"".join(lines.values()) + b"To: support@example.se\r\n\r\nBokningen.\r\n"
    mail = parse_mail(raw)
    assert "CommentNestingTooDeep" in mail.defects
    assert "Bokningen." in mail.text


def test_comments_nested_within_the_bound_are_untouched() -> None:
    comment = b"(" * MAX_COMMENT_NESTING + b"x" + b")" * MAX_COMMENT_NESTING
    mail = parse_mail(b"From: " + comment + b" anna.lind@bergstromsbygg.se\r\nSubject: " + comment
                      + b"\r\n\r\nText\r\n")
    assert mail.sender is not None and mail.sender.address == "anna.lind@bergstromsbygg.se"
    assert mail.subject.count("(") == MAX_COMMENT_NESTING
    assert "CommentNestingTooDeep" not in mail.defects


@pytest.mark.parametrize("nesting", [
    b"".join(b"Content-Type: multipart/mixed; boundary=B%d\r\n\r\n--B%d\r\n" % (i, i)
             for i in range(2000)),
    b"Content-Type: message/rfc822\r\n\r\n" * 1500,
], ids=["multipart", "message-rfc822"])
def test_mime_nested_thousands_deep_keeps_the_headers(nesting: bytes) -> None:
    mail = parse_mail(HEAD + b"Subject: Djupt\r\nMIME-Version: 1.0\r\n" + nesting + b"\r\nx\r\n")
    assert mail.subject == "Djupt"
    assert mail.sender is not None
    assert "MimeNestingTooDeep" in mail.defects


@pytest.mark.parametrize("raw", [
    NUL_CHARSET, BROKEN_FILENAME,
    HEAD + b"Subject: " + b"(" * 600 + b"\r\n\r\nBokningen.\r\n",
    b"From: " + b"(" * 600 + b"anna.lind@bergstromsbygg.se\r\nTo: support@example.se\r\n"
    b"Subject: Hej\r\n\r\nBokningen.\r\n",
], ids=["nul-charset", "broken-filename", "nested-subject", "nested-from"])
def test_hostile_value_becomes_a_ticket_not_a_quarantine(runtime: Runtime, raw: bytes) -> None:
    outcome = receive(runtime, raw, sender="anna.lind@bergstromsbygg.se")
    row = inbound(runtime, outcome.inbound_id)
    assert row.state == "processed", row.last_error
    assert len(tickets(runtime)) == 1


def test_route_of_600_nested_comments_in_from_prints_a_decision(maild: MaildCLI,
                                                                tmp_path: Path) -> None:
    path = tmp_path / "nested.eml"
    path.write_bytes(b"From: " + b"(" * 600 + b"anna.lind@bergstromsbygg.se\r\n"
                     b"To: support@example.se\r\nSubject: Hej\r\n\r\nBokningen.\r\n")
    result = maild("route", str(path), "--json")
    assert result.code == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert '"kind"' in result.stdout


OWN = "bergstromsbygg.se"
# A From domain of 30,000 labels fits in the 64 KB an address header is read to.
LONG_NAME = ".".join(["a"] * 30_000) + ".bergstromsbygg.se"


def test_the_parents_of_a_name_of_thousands_of_labels_are_only_names_a_domain_can_be() -> None:
    parents = parent_domains(LONG_NAME)
    assert parents[0] == LONG_NAME
    assert all(len(parent) <= MAX_DOMAIN for parent in parents[1:])
    assert len(parents) < 130
    assert parents[-3:] == [f"a.a.{OWN}", f"a.{OWN}", OWN]
    assert registrable_domain(LONG_NAME) == OWN



def test_the_registrable_domain_of_long_names_is_remembered_in_little_memory() -> None:
    # A trusted MTA's Authentication-Results copies the sender's names (header.d,
    # smtp.mailfrom) as written; before, each 60 KB name stayed a key of the cache.
    registrable_domain("warm.up.bergstromsbygg.se")
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        found = {registrable_domain(f"x{index}.{LONG_NAME}") for index in range(200)}
        after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert found == {OWN}
    assert after - before < 1024 * 1024, f"{(after - before) / 1e6:.1f} MB kept"


@pytest.mark.parametrize("sender", [
    f"anna@{LONG_NAME}",
    f"{'a' * 600}@bergstromsbygg.se",
    f"anna@[{'1' * 600}]",
], ids=["domain-of-30000-labels", "local-part-of-600", "address-literal-of-600"])
def test_a_from_address_longer_than_any_becomes_a_ticket_in_little_memory(
        runtime: Runtime, sender: str) -> None:
    # Before: the parents of the long name, each listed whole, held 861 MB, and
    # PostgreSQL refused the ticket's requester (512 characters), so the mail was
    # tried again until quarantined.
    raw = (f"From: Anna Lind <{sender}>\r\nTo: support@example.se\r\n"
           "Message-ID: <long-name-1@bergstromsbygg.se>\r\nSubject: Bokningen\r\n\r\n"
           "Bokningssidan visar fel pris.\r\n").encode()
    tracemalloc.start()
    try:
        outcome = receive(runtime, raw, sender="anna@bergstromsbygg.se")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    row = inbound(runtime, outcome.inbound_id)
    assert row.state == "processed", row.last_error
    [ticket] = tickets(runtime)
    # Routed by the envelope sender, as any mail whose From cannot be read; answered by none.
    assert ticket.requester == "anna@bergstromsbygg.se"
    customer = runtime.rules.customer_for_domain(OWN)
    assert customer is not None and ticket.customer == customer.id
    assert row.decision is not None and row.decision["ack"] is False
    assert peak < 40 * 1024 * 1024, f"peak {peak / 1e6:.0f} MB"


def test_a_message_id_longer_than_a_header_line_is_no_message_id(runtime: Runtime) -> None:
    # Before: PostgreSQL refused it in the ticket's message (998 characters), and the
    # mail was tried again until quarantined.
    long_id = "x" * 2_000 + "@bergstromsbygg.se"
    raw = (f"From: Anna Lind <anna.lind@bergstromsbygg.se>\r\nTo: support@example.se\r\n"
           f"Message-ID: <{long_id}>\r\nIn-Reply-To: <{long_id}>\r\nSubject: Bokningen\r\n\r\n"
           "Bokningssidan visar fel pris.\r\n").encode()
    mail = parse_mail(raw)
    assert mail.message_id is None and mail.in_reply_to == ()
    assert "MessageIdTooLong" in mail.defects
    outcome = receive(runtime, raw, sender="anna.lind@bergstromsbygg.se")
    row = inbound(runtime, outcome.inbound_id)
    assert row.state == "processed", row.last_error
    assert len(tickets(runtime)) == 1


_DOTS = ".".join(["a"] * 20_000)
_MANY_IDS = " ".join(f"<m{index}@x.se>" for index in range(4_000))
HOSTILE_LENGTHS = {
    "Subject": " ".join(["ord"] * 15_000),
    "Message-ID": f"<x@{_DOTS}>",
    "In-Reply-To": _MANY_IDS,
    "References": _MANY_IDS,
    "Reply-To": f"x@{_DOTS}.se",
    "From": f'"{"N" * 40_000}" <anna.lind@bergstromsbygg.se>',
    "To": ", ".join(f"p{index}@bergstromsbygg.se" for index in range(3_000)),
    "Cc": ", ".join(f"p{index}@x{index}.se" for index in range(3_000)),
    "Date": "x" * 40_000,
    "Authentication-Results": f"mx.example.se; dmarc=pass header.from={_DOTS}.se",
    "Content-Type": f"text/plain; charset=utf-8; x={'y' * 40_000}",
    "Auto-Submitted": "no" * 20_000,
    "List-Id": f"<{_DOTS}>",
    "Importance": "high " * 8_000,
    "Content-Language": "sv " * 13_000,
}


def test_no_header_of_hostile_length_keeps_a_mail_from_its_ticket(runtime: Runtime) -> None:
    """Each header at 40-60 KB, one mail each: every one is processed as at any length
    (PostgreSQL refuses a value longer than its column, where SQLite keeps it)."""
    refused, kinds = {}, {}
    for index, (name, value) in enumerate(HOSTILE_LENGTHS.items()):
        fields = {"From": "Anna Lind <anna.lind@bergstromsbygg.se>", "To": "support@example.se",
                  "Subject": "Bokningen", "Message-ID": f"<hostile-length-{index}@b.se>",
                  name: value}
        raw = ("".join(f"{key}: {text}\r\n" for key, text in fields.items())
               + "\r\nBokningssidan visar fel pris.\r\n").encode()
        row = inbound(runtime, receive(runtime, raw, sender="anna.lind@bergstromsbygg.se")
                      .inbound_id)
        if row.state != "processed":
            refused[name] = f"{row.state}: {row.last_error or ''}"[:200]
        kinds[name] = row.kind
    assert refused == {}
    # Machine mail by its own headers, as at any length; every other one a new ticket.
    assert kinds == {name: {"Auto-Submitted": "autoreply", "List-Id": "list"}.get(name, "new")
                     for name in HOSTILE_LENGTHS}
    assert len(tickets(runtime)) == len(HOSTILE_LENGTHS) - 2
