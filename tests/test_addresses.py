"""The real sender: addresses are read from the undecoded header by RFC 5322 rules.

An encoded word in a display name is decoded only after the address is read,
so it can never become the address an acknowledgement goes to; Outlook's
quoted-address names, broken encoded words and hostile nesting keep the real
address. Tested on the parser itself, through the pipeline, `maild route
--json` and `maild ingest`.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from maild.addresses import (
    MAX_ADDRESSES,
    MAX_LOCAL,
    address_key,
    mailbox_key,
    read_address_list,
)
from maild.classify.sender import MAX_DOMAIN
from maild.parse import parse_mail
from maild.routing.load import load_rules
from maild.runtime import Runtime
from tests.conftest import RULES, MaildCLI
from tests.pipeline_helpers import acks, inbound, receive, tickets

CONTACT = "anna.lind@bergstromsbygg.se"      # a registered contact of Bergströms Bygg
# The attacks of issue 11 on the From header, with the address they must yield.
ATTACKS = {
    "encoded-address-in-name": f"=?utf-8?q?victim=40evil=2Eexample?= <{CONTACT}>",
    "outlook-quoted-name": f"'{CONTACT}' <{CONTACT}>",
    "broken-encoded-word": f"=?utf-8?B?A?= <{CONTACT}>",
    "unknown-charset": f"=?x-no-such-charset?q?Anna?= <{CONTACT}>",
    "deep-comment": "(" * 600 + "x" + ")" * 600 + f" {CONTACT}",
}


def _raw(sender: str, *, extra: str = "", subject: str = "Bokningen fungerar inte") -> bytes:
    return (f"From: {sender}\r\nTo: support@example.se\r\n{extra}Subject: {subject}\r\n"
            "Message-ID: <attack.1@mail.test>\r\nDate: Mon, 16 Nov 2026 10:12:00 +0100\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n\r\n"
            "Hej!\r\n\r\nBokningssidan visar fel pris sedan i morse.\r\n\r\nAnna\r\n").encode()


def _one(value: str) -> tuple[str, str] | None:
    found, _ = read_address_list(value)
    return (found[0].name, found[0].address) if found else None


# --- the reader --------------------------------------------------------------------------


def test_an_encoded_word_in_the_name_never_becomes_the_address() -> None:
    assert _one("=?utf-8?q?victim=40evil=2Eexample?= <eva@customer.se>") == (
        "victim@evil.example", "eva@customer.se")
    assert _one("=?utf-8?q?=3Cvictim=40evil.example=3E?= <eva@customer.se>") == (
        "<victim@evil.example>", "eva@customer.se")
    # Alone, an encoded word is no address at all.
    assert _one("=?utf-8?q?victim=40evil=2Eexample?=") is None


def test_outlook_names_that_are_addresses_keep_the_real_one() -> None:
    assert _one("'anna@customer.se' <anna@customer.se>") == ("anna@customer.se",
                                                            "anna@customer.se")
    assert _one('"victim@evil.example" <eva@customer.se>') == ("victim@evil.example",
                                                              "eva@customer.se")
    assert _one("victim@evil.example <eva@customer.se>") == ("victim@evil.example",
                                                            "eva@customer.se")


def test_a_broken_encoded_word_keeps_the_address_and_the_name_as_written() -> None:
    assert _one("=?utf-8?B?A?= <eva@customer.se>") == ("=?utf-8?B?A?=", "eva@customer.se")
    assert _one("=?utf-8?q?broken <eva@customer.se>") == ("=?utf-8?q?broken",
                                                         "eva@customer.se")
    assert _one("=?x-unknown?q?Eva?= <eva@customer.se>") is not None


def test_ordinary_forms_of_rfc_5322() -> None:
    found, defects = read_address_list(
        'Anna =?utf-8?q?Lind?= <anna@x.se>, "Lind, Bo" <bo@x.se>, c@x.se (Carl Berg), '
        'team: d@x.se, e@x.se;, <@relay.example:f@x.se>, "john doe"@x.se')
    assert [(box.name, box.address) for box in found] == [
        ("Anna Lind", "anna@x.se"), ("Lind, Bo", "bo@x.se"), ("Carl Berg", "c@x.se"),
        ("", "d@x.se"), ("", "e@x.se"), ("", "f@x.se"), ("", '"john doe"@x.se')]
    assert defects == ()
    assert read_address_list("undisclosed-recipients:;") == ((), ())


@pytest.mark.parametrize("value", [
    "Eva <eva@customer.se> victim@evil.example",        # text after the angle address
    "Eva <eva@customer.se> <victim@evil.example>",      # two angle addresses
    "Anna Lind anna@customer.se",                       # a phrase without angle brackets
    "'anna@customer.se'",                               # a quote is no domain character
    "anna@",
    "@customer.se",
    'alice@example.org"@evil.example',
])
def test_what_is_not_one_mailbox_is_left_out_with_a_defect(value: str) -> None:
    found, defects = read_address_list(value)
    assert found == ()
    assert defects


def test_deep_nesting_and_long_headers_are_bounded() -> None:
    # 600 unclosed comments: everything is comment, no address, no RecursionError.
    assert read_address_list("(" * 600 + "eva@customer.se")[0] == ()
    found, _ = read_address_list("(" * 100_000 + ")" * 100_000 + " eva@customer.se")
    assert found == (), "text beyond the bound is not read"
    many = ", ".join(f"p{index}@x.se" for index in range(MAX_ADDRESSES + 10))
    found, defects = read_address_list(many)
    assert len(found) == MAX_ADDRESSES
    assert any("more than" in defect for defect in defects)


def test_an_address_longer_than_an_address_can_be_is_left_out() -> None:
    # The longest name there is: four labels of 63 characters joined (253 characters).
    longest = ".".join(["a" * 63, "b" * 63, "c" * 63, "d" * 61])
    assert len(longest) == MAX_DOMAIN
    assert _one(f"<eva@{longest}>") == ("", f"eva@{longest}")
    assert _one(f"<{'e' * MAX_LOCAL}@customer.se>") == ("", f"{'e' * MAX_LOCAL}@customer.se")
    for value in (f"<eva@x{longest}>",                              # 254 characters
                  f"<eva@{'a' * 64}.se>",                          # a label of 64
                  f"<{'e' * (MAX_LOCAL + 1)}@customer.se>",
                  "<eva@" + ".".join(["a"] * 30_000) + ".se>",     # 60,000 characters
                  f"<eva@[{'1' * MAX_DOMAIN}]>"):
        found, defects = read_address_list(value)
        assert found == (), value[:80]
        assert any("not an address" in defect for defect in defects)


def test_domains_are_lower_cased_in_the_form_written_and_compared_in_one_form() -> None:
    assert _one("Anna <Anna.Lind@XN--RKSMRGS-5WAO1O.SE.>") == (
        "Anna", "Anna.Lind@xn--rksmrgs-5wao1o.se")
    assert _one("<anna@RÄKSMÖRGÅS.se>") == ("", "anna@räksmörgås.se")
    decomposed = "ra\u0308ksmo\u0308rga\u030as.se"
    assert _one(f"<anna@{decomposed}>") == ("", "anna@räksmörgås.se")
    assert address_key("Anna.Lind@XN--RKSMRGS-5WAO1O.SE") == address_key(
        "anna.lind@Räksmörgås.se") == "anna.lind@räksmörgås.se"


def test_encoded_words_in_an_address_are_read_only_as_non_ascii_text() -> None:
    # Python's email package writes a non-ASCII address this way.
    assert _one("linnea@=?utf-8?b?csOka3Ntw7ZyZ8Olcw==?=.se") == ("", "linnea@räksmörgås.se")
    assert _one("=?utf-8?b?w6VzYQ==?=@example.se") == ("", "åsa@example.se")
    # Never an ASCII name, never structure.
    assert _one("eva@=?utf-8?q?customer.se?=") is None
    assert _one("=?utf-8?q?eva?=@customer.se") == ("", "=?utf-8?q?eva?=@customer.se")
    assert _one("eva@=?utf-8?q?r=C3=A4k=40evil.example?=") is None


def test_mailbox_key_joins_case_tags_and_gmail_dots() -> None:
    assert mailbox_key("Anna.Lind+ack7@Bergstromsbygg.SE") == "anna.lind@bergstromsbygg.se"
    assert mailbox_key("a.n.n.a+x@GMail.com") == "anna@gmail.com"
    assert mailbox_key("anna@xn--rksmrgs-5wao1o.se") == "anna@räksmörgås.se"
    assert mailbox_key("a.n.na@example.se") != mailbox_key("anna@example.se")


def test_parse_mail_reads_from_reply_to_to_and_cc_undecoded() -> None:
    mail = parse_mail(_raw(
        "=?utf-8?q?victim=40evil=2Eexample?= <eva@customer.se>",
        extra=("Reply-To: =?utf-8?q?x=40evil.example?= <eva@customer.se>\r\n"
               "Cc: =?utf-8?q?y=40evil.example=2C_z=40evil.example?= <bo@customer.se>\r\n")))
    assert mail.sender is not None and mail.sender.address == "eva@customer.se"
    assert [a.address for a in mail.reply_to] == ["eva@customer.se"]
    assert [a.address for a in mail.cc] == ["bo@customer.se"]
    assert [a.address for a in mail.to] == ["support@example.se"]


def test_a_utf8_header_address_is_read() -> None:
    raw = ("From: Åsa Ek <åsa@räksmörgås.se>\r\nTo: support@example.se\r\nSubject: x\r\n\r\n"
           "Hej\r\n").encode()
    mail = parse_mail(raw)
    assert mail.sender is not None
    assert (mail.sender.name, mail.sender.address) == ("Åsa Ek", "åsa@räksmörgås.se")


# --- through the pipeline ----------------------------------------------------------------


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_the_attacks_route_and_answer_the_real_sender(sqlite_runtime: Runtime,
                                                      attack: str) -> None:
    outcome = receive(sqlite_runtime, _raw(ATTACKS[attack]))
    decision = inbound(sqlite_runtime, outcome.inbound_id).decision
    assert decision is not None
    assert decision["kind"] == "new"
    assert decision["sender"] == CONTACT
    assert decision["customer"] == "bergstroms-bygg"
    assert decision["route_reason"].startswith(f"{CONTACT} is registered contact")
    assert decision["ack"] is True and decision["ack_to"] == CONTACT
    [ack] = acks(sqlite_runtime)
    assert ack["To"] == CONTACT
    assert "evil" not in str(ack["To"])


def test_600_unclosed_parentheses_in_from_make_a_ticket(sqlite_runtime: Runtime) -> None:
    outcome = receive(sqlite_runtime, _raw("(" * 600 + CONTACT), sender=CONTACT)
    assert outcome.ticket is not None
    decision = inbound(sqlite_runtime, outcome.inbound_id).decision
    assert decision is not None
    assert decision["sender"] == CONTACT, "the envelope sender stands in for the unread From"
    assert any("unterminated comment" in defect for defect in decision["defects"])
    assert [ticket.number for ticket in tickets(sqlite_runtime)] == [outcome.ticket]


# --- through the command -----------------------------------------------------------------


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_route_json_shows_the_real_sender(maild: MaildCLI, attack: str) -> None:
    message = maild.cwd / "attack.eml"
    message.write_bytes(_raw(ATTACKS[attack]))
    result = maild("route", str(message), "--json")
    assert result.code == 0, result.stderr
    assert "Traceback" not in result.stderr
    decision = json.loads(result.stdout)
    assert (decision["sender"], decision["customer"], decision["ack_to"]) == (
        CONTACT, "bergstroms-bygg", CONTACT)


def test_route_json_of_600_unclosed_parentheses(maild: MaildCLI) -> None:
    message = maild.cwd / "deep.eml"
    message.write_bytes(_raw("(" * 600 + CONTACT))
    result = maild("route", str(message), "--json")
    assert result.code == 0, result.stderr
    assert json.loads(result.stdout)["sender"] is None


def test_ingest_of_the_attacks_answers_only_the_real_sender(maild: MaildCLI) -> None:
    folder = maild.cwd / "attacks"
    folder.mkdir()
    for index, attack in enumerate(sorted(ATTACKS)):
        raw = _raw(ATTACKS[attack], subject=f"Fråga {index}").replace(
            b"attack.1@", f"attack.{index}@".encode()).replace(
            b"Bokningssidan", f"Sida {index}".encode())
        (folder / f"{attack}.eml").write_bytes(raw)
    result = maild("ingest", str(folder))
    assert result.code == 0, result.stderr
    with sqlite3.connect(maild.cwd / "var" / "maild.db") as connection:
        rows = connection.execute(
            "SELECT recipient FROM outbox WHERE purpose = 'ack'").fetchall()
        customers = connection.execute("SELECT customer, requester FROM ticket").fetchall()
        quarantined = connection.execute(
            "SELECT count(*) FROM inbound WHERE state = 'quarantined'").fetchone()[0]
    assert quarantined == 0
    assert sorted(customers) == [("bergstroms-bygg", CONTACT)] * len(ATTACKS)
    assert [row[0] for row in rows] == [CONTACT] * len(ATTACKS)


def test_a_contact_is_recognised_in_either_idn_form(tmp_path: Path) -> None:
    rules_dir = tmp_path / "rules"
    shutil.copytree(RULES, rules_dir)
    customer = rules_dir / "customers" / "raksmorgas.toml"
    customer.write_text(customer.read_text(encoding="utf-8") + (
        '\n[[contact]]\naddress = "Kalle.Ek@XN--RKSMRGS-5WAO1O.SE"\nname = "Kalle Ek"\n'),
        encoding="utf-8")
    rules = load_rules(rules_dir)
    for written in ("Kalle Ek <kalle.ek@räksmörgås.se>", "<KALLE.EK@xn--rksmrgs-5wao1o.se>"):
        mail = parse_mail(f"From: {written}\r\nTo: support@example.se\r\n\r\nHej\r\n".encode())
        assert mail.sender is not None
        found = rules.contact(mail.sender.address)
        assert found is not None and found[0].id == "raksmorgas", written
