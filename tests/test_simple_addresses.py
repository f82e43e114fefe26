"""Address headers as most are written are read without their tokens, to the same result.

`Name <address>` and bare addresses separated by commas make up nearly every From, To
and Cc; `maild.addresses` reads such a header with one pattern and the token reader
reads every other. Each test compares the two readers.
"""

from __future__ import annotations

import email
from email import policy
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from maild import addresses

ROOT = Path(__file__).resolve().parent.parent
ADDRESS_HEADERS = ("from", "sender", "to", "cc", "reply-to")

# The pieces of real headers, with what the token reader treats apart mixed in: quotes,
# comments, groups, routes, encoded words, spaces of every kind, broken brackets.
PIECES = st.sampled_from([
    "Anna", "Lind", "anna.lind", "@", "bergstromsbygg.se", "BERGSTROMS.SE", "x", " ", "  ",
    "\t", "\r\n ", "\xa0", "\u3000", "<", ">", ",", ", ", ";", ":", '"', "(", ")", "\\", "'",
    "=?utf-8?q?Str=C3=B6m?=", "=?", "?=", "ö", "räksmörgås.se", "xn--rksmrgs-5wao1o.se",
    "[192.0.2.1]", ".", "..", "+tag", "-", "_", "İ", "ſ", "support@example.se"])
HEADERS = st.lists(PIECES, max_size=14).map("".join)

# Headers as mail clients write them: the shapes the pattern is for, and near misses.
NAMES = st.sampled_from(["", "Anna Lind", "Anna  Lind", "'anna@x.se'", "Åsa Öberg",
                         "=?utf-8?q?=C3=85sa?=", "IT-ansvarig", "a\tb", "Per"])
SPECS = st.sampled_from(["anna.lind@bergstromsbygg.se", "Per@Example.SE", "a@b", "x",
                         "anna@räksmörgås.se", "anna@[192.0.2.1]", "a..b@x.se",
                         "anna@=?utf-8?b?cuRrc23ucmfzLnNl?=", "=?utf-8?q?=C3=A5sa?=@x.se",
                         "=?utf-8?q?anna?=@x.se", "@x.se", "a@", "a@b@c.se"])
SPACES = st.sampled_from(["", " ", "  ", "\t", "\xa0"])


@st.composite
def written(draw: st.DrawFn) -> str:
    mailboxes = []
    for _ in range(draw(st.integers(1, 4))):
        name, spec = draw(NAMES), draw(SPECS)
        around = draw(SPACES), draw(SPACES)
        shape = draw(st.sampled_from(["angle", "bare", "name-tight"]))
        mailbox = (f"{name} <{spec}>" if shape == "angle" else
                   f"{name}<{spec}>" if shape == "name-tight" else spec)
        mailboxes.append(f"{around[0]}{mailbox}{around[1]}")
    return ",".join(mailboxes)


def _same(value: str) -> None:
    assert addresses.read_address_list(value) == addresses._read_tokens(value), value


@settings(max_examples=3000)
@given(HEADERS)
def test_any_header_reads_as_the_token_reader_reads_it(value: str) -> None:
    _same(value)


@settings(max_examples=3000)
@given(written())
def test_a_header_as_clients_write_it_reads_as_the_token_reader_reads_it(value: str) -> None:
    _same(value)


def test_the_pattern_reads_the_usual_headers_and_leaves_the_rest_to_the_tokens() -> None:
    assert addresses._simple_list("Anna Lind <anna.lind@bergstromsbygg.se>, per@example.se") \
        == ((addresses.Address("Anna Lind", "anna.lind@bergstromsbygg.se"),
             addresses.Address("", "per@example.se")), ())
    for value in ('"Lind, Anna" <anna@x.se>', "anna@x.se (Anna)", "Team: anna@x.se;",
                  "Anna Lind anna@x.se", "not an address", "a@x.se,", "<@relay:a@x.se>"):
        assert addresses._simple_list(value) is None, value


def test_every_address_header_of_the_corpus_reads_as_the_token_reader_reads_it() -> None:
    read = 0
    for path in sorted([*(ROOT / "tests" / "corpus").rglob("*"),
                        *(ROOT / "fixtures").rglob("*")]):
        if not path.is_file() or path.suffix in (".tsv", ".md", ".toml", ".json") \
                or path.name.startswith("LICENSE"):
            continue
        message = email.message_from_bytes(path.read_bytes(), policy=policy.compat32)
        for name, value in message.raw_items():
            if name.lower() in ADDRESS_HEADERS:
                _same(str(value))
                read += 1
    assert read > 1000
