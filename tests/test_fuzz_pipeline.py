"""Fuzzing parse → classify → decide → compose with hostile messages (hypothesis).

Properties, for any bytes shaped like mail:

- no exception escapes: a message is parsed (or declared unparseable), decided,
  and its acknowledgement and team copies are composed;
- the acknowledgement goes only to an address parsed from the message's From,
  Sender or Reply-To header, as one clean address;
- every composed mail is valid on the wire: CRLF line endings only, no line over
  998 bytes, address headers that parse to addresses.

Bounded for CI: `MAILD_FUZZ_EXAMPLES` examples (default 40) per property and
`MAILD_FUZZ_DEADLINE_MS` per example (default: none, the machine may be busy).
A failing example is written to `tests/fuzz-regressions/` (commit it); every
file there is replayed on every run.
"""

from __future__ import annotations

import contextlib
import email
import email.policy
import hashlib
import os
import re
from datetime import UTC, datetime
from email.utils import getaddresses
from functools import cache
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.control import current_build_context

from maild.envelope import Envelope, identity_of
from maild.models import Ticket
from maild.parse import ParsedMail, UnparseableMail, bound_comment_nesting, parse_mail
from maild.pipeline import Decision, decide
from maild.respond.ack import ComposedMail, compose_ack
from maild.respond.team import compose_team_delivery
from maild.routing.load import load_rules
from maild.routing.model import Rules
from maild.tickets.correlate import NoTickets
from maild.tickets.numbering import TicketNumbering
from tests.conftest import ROOT

REGRESSIONS = Path(__file__).parent / "fuzz-regressions"
NOW = datetime(2026, 11, 16, 9, 30, tzinfo=UTC)
FUZZ = settings(
    max_examples=int(os.environ.get("MAILD_FUZZ_EXAMPLES", "40")),
    deadline=(int(os.environ["MAILD_FUZZ_DEADLINE_MS"])
              if os.environ.get("MAILD_FUZZ_DEADLINE_MS") else None),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    database=None,
)


@cache
def _rules() -> Rules:
    return load_rules(ROOT / "rules")


# --- hostile pieces of mail ---------------------------------------------------------------

_ADDRESSES = ["anna.lind@bergstromsbygg.se", "support@example.se", "x@räksmörgås.se",
              "MAILER-DAEMON@mx.kund.se", "no-reply@kund.se", "a+tag@Kund.SE",
              "victim@evil.example", "\"quoted local\"@kund.se", "bad@@kund.se", "<>", ""]
_nasty_text = st.one_of(
    st.text(max_size=80),
    st.sampled_from(["=?utf-8?B?A?=", "=?utf\x00-8?q?x?=", "=?utf-8?q?victim=40evil=2Eexample?=",
                     "=?iso-8859-1?q?Non_remis=A0:?=", "'anna@customer.se'", "\"a,b\" <c@d.se>",
                     "(" * 600, ")" * 50, "\\", "\"", "<", ">", ",", ";", ":", "@", "\r\n",
                     "\n", "\r", "\x00", "\t", "x" * 3000, "å" * 600, "\udcff"]),
)


@st.composite
def _address_value(draw: st.DrawFn) -> str:
    parts = draw(st.lists(st.tuples(_nasty_text, st.sampled_from(_ADDRESSES)), min_size=1,
                          max_size=3))
    shapes = [f"{name} <{address}>" if name else address for name, address in parts]
    return ", ".join(shapes)


_HEADER_NAMES = ["From", "Reply-To", "Sender", "To", "Cc", "Subject", "Message-ID",
                 "In-Reply-To", "References", "Date", "Content-Type",
                 "Content-Transfer-Encoding", "Auto-Submitted", "Precedence", "List-Id",
                 "X-Failed-Recipients", "MIME-Version", "X-Random"]


@st.composite
def _header(draw: st.DrawFn) -> bytes:
    name = draw(st.sampled_from(_HEADER_NAMES))
    if name in ("From", "Reply-To", "Sender", "To", "Cc"):
        value = draw(_address_value())
    elif name == "Content-Type":
        value = draw(st.sampled_from([
            "text/plain; charset=utf-8", "text/plain; charset=\"utf\x00-8\"",
            "text/html; charset=bogus", "multipart/mixed; boundary=B",
            "multipart/report; report-type=delivery-status; boundary=B",
            "message/rfc822", "application/octet-stream; name=\"=?utf-8?B?A?=\"",
        ])) + draw(st.sampled_from(["", "(" * 600, "; format=flowed"]))
    else:
        value = draw(_nasty_text)
    encoding = draw(st.sampled_from(["utf-8", "latin-1"]))
    return f"{name}: {value}".encode(encoding, "surrogateescape" if encoding == "utf-8"
                                     else "replace") + draw(st.sampled_from([b"\r\n", b"\n"]))


@st.composite
def _body(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["text", "binary", "mime"]))
    if kind == "text":
        return draw(st.text(max_size=500)).encode("utf-8", "surrogateescape")
    if kind == "binary":
        return draw(st.binary(max_size=500))
    parts = []
    for _ in range(draw(st.integers(1, 3))):
        headers = b"".join(draw(st.lists(st.sampled_from([
            b"Content-Type: text/plain; charset=\"iso\x00-8859-1\"\r\n",
            b"Content-Type: application/pdf\r\n",
            b"Content-Disposition: attachment; filename=\"=?utf-8?B?A?=\"\r\n",
            b"Content-Disposition: attachment; filename*=utf\x00-8''a%E4.pdf\r\n",
            b"Content-Transfer-Encoding: base64\r\n",
            b"Content-Transfer-Encoding: quoted-printable\r\n",
            b"Content-Type: message/delivery-status\r\n",
        ]), max_size=3)))
        parts.append(b"--B\r\n" + headers + b"\r\n" + draw(st.binary(max_size=200)) + b"\r\n")
    return b"".join(parts) + b"--B--\r\n"


@st.composite
def hostile_mail(draw: st.DrawFn) -> bytes:
    """Bytes shaped like mail: a header block of hostile values and a body of any kind."""
    headers = draw(st.lists(_header(), min_size=1, max_size=8))
    if draw(st.booleans()):
        headers.insert(0, b"From: " + draw(_address_value()).encode("utf-8", "surrogateescape")
                       + b"\r\n")
    return b"".join(headers) + b"\r\n" + draw(_body())


# --- the pipeline and its properties --------------------------------------------------------


def _compose(raw: bytes) -> tuple[ParsedMail | None, Decision | None, list[ComposedMail]]:
    """Run the pipeline on `raw` as the daemon does, without a database."""
    try:
        mail = parse_mail(raw)
    except UnparseableMail:
        return None, None, []
    rules = _rules()
    numbering = TicketNumbering("MD")
    decision = decide(mail, Envelope(sender=None, recipients=("support@example.se",),
                                     received_at=NOW),
                      rules, lookup=NoTickets(), numbering=numbering,
                      identity=identity_of(rules, None))
    composed: list[ComposedMail] = []
    if decision.ticket is None and decision.kind not in ("new", "followup"):
        return mail, decision, composed
    number = decision.ticket or "MD-2026-00001"
    if decision.ack:
        composed.append(compose_ack(
            rules=rules, decision=decision, ticket=number, original_message_id=mail.message_id,
            original_references=mail.references, numbering=numbering, domain="example.se",
            now=NOW))
    ticket = Ticket(number=number, subject=mail.subject, requester=decision.sender,
                    customer=decision.customer, policy=decision.policy, queue=decision.queue,
                    priority=decision.priority, private=decision.private, created_at=NOW,
                    updated_at=NOW, missing=decision.missing)
    composed += compose_team_delivery(
        ticket=ticket, rules=rules, raw=raw, original_subject=mail.subject,
        sender=decision.sender, priority_reason="fuzz", role="opening",
        support_address=decision.details.get("support_address") or "support@example.se",
        numbering=numbering, domain="example.se", now=NOW,
        opaque="MimeNestingTooDeep" in mail.defects)
    return mail, decision, composed


def _parsed_senders(raw: bytes) -> set[str]:
    """The From, Sender and Reply-To addresses of the undecoded headers, independently of maild.

    Two readings count: the standard library's header registry (RFC 5322) and its
    lenient `getaddresses` on the header lines as written (8-bit read as UTF-8),
    so an encoded word in a display name stays a name. Comments are bounded first.
    """
    bounded = bound_comment_nesting(raw)[0]
    strict = email.message_from_bytes(bounded, policy=email.policy.default)
    found: set[str] = set()
    for name in _SENDER_HEADERS:
        with contextlib.suppress(Exception):  # a header the registry cannot read names nobody
            for value in strict.get_all(name) or []:
                found |= {_bytes_text(address.addr_spec.encode("utf-8", "surrogateescape"))
                          .lower() for address in value.addresses}
    head = re.split(rb"\r?\n\r?\n", bounded, maxsplit=1)[0]
    fields = re.findall(rb"(?im)^(from|sender|reply-to):(.*(?:\r?\n[ \t].*)*)", head)
    found |= {address.strip().lower() for _, address in getaddresses(
        [_bytes_text(value) for _, value in fields])}
    return found


def _bytes_text(value: bytes) -> str:
    """8-bit header bytes as text: UTF-8, else Latin-1 (as mail clients write them)."""
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return value.decode("latin-1")


_SENDER_HEADERS = ("From", "Sender", "Reply-To")


def check_recipients(raw: bytes) -> None:
    """No exception escapes, and an acknowledgement goes only to a parsed sender address."""
    mail, decision, composed = _compose(raw)
    if mail is None or decision is None:
        return
    team = {address.lower() for queue in _rules().queues.values() for address in queue.team}
    for item in composed:
        recipient = item.recipient.lower()
        # one address: a plain or quoted local part ("quoted local"@kund.se), then a domain
        assert re.fullmatch(r'(?:"[^"\\\r\n]*"|[^\s,;<>()"]+)@[^\s,;<>()@"]+', recipient), \
            recipient
        assert recipient in _parsed_senders(raw) | team, (
            f"{recipient!r} is neither a parsed From/Sender/Reply-To address nor a team address")


def check_wire_format(raw: bytes) -> None:
    """Every composed mail has CRLF line endings, lines of at most 998 bytes, addresses."""
    _, _, composed = _compose(raw)
    for item in composed:
        data = item.raw
        assert b"\n" not in data.replace(b"\r\n", b""), "a bare LF or CR in a composed mail"
        assert b"\r" not in data.replace(b"\r\n", b""), "a bare CR in a composed mail"
        longest = max(len(line) for line in data.split(b"\r\n"))
        assert longest <= 998, f"a line of {longest} bytes in a composed mail"
        message = email.message_from_bytes(data, policy=email.policy.default)
        for name in ("From", "To", "Reply-To"):
            for value in message.get_all(name) or []:
                addresses = value.addresses
                assert addresses, f"{name}: {str(value)[:80]!r} has no address"
                assert all("@" in address.addr_spec for address in addresses), str(value)[:80]


def _keep(raw: bytes) -> None:
    """Write the (shrunk) failing example where the suite replays it from now on."""
    if not current_build_context().is_final:
        return  # an example on the way to the smallest one
    REGRESSIONS.mkdir(exist_ok=True)
    if any(path.read_bytes() == raw for path in REGRESSIONS.glob("*.eml")):
        return  # kept already
    path = REGRESSIONS / f"{hashlib.sha256(raw).hexdigest()[:16]}.eml"
    path.write_bytes(raw)


@FUZZ
@given(hostile_mail())
def test_fuzz_no_exception_and_recipients_only_from_parsed_headers(raw: bytes) -> None:
    try:
        check_recipients(raw)
    except BaseException:
        _keep(raw)
        raise


@FUZZ
@given(hostile_mail())
def test_fuzz_every_composed_mail_is_valid_on_the_wire(raw: bytes) -> None:
    try:
        check_wire_format(raw)
    except BaseException:
        _keep(raw)
        raise


REPLAYED = sorted(REGRESSIONS.glob("*.eml"))


@pytest.mark.parametrize("path", REPLAYED, ids=[path.name for path in REPLAYED])
def test_fuzz_regression_replays(path: Path) -> None:
    raw = path.read_bytes()
    check_recipients(raw)
    check_wire_format(raw)
