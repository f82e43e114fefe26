"""MAIL FROM and RCPT TO paths: the plain reading answers as aiosmtpd's own, or not at all."""

from __future__ import annotations

import pytest
from aiosmtpd.smtp import SMTP
from hypothesis import given, settings
from hypothesis import strategies as st

from maild.transports.smtp import MaildSMTP
from maild.transports.smtp_address import plain_path

_AIOSMTPD = SMTP(None)

# Pieces a hostile or odd client puts in a path, joined at random below.
_PIECES = ["<", ">", "@", ".", " ", "\t", "(", ")", '"', "\\", ":", ",", "[", "]", "a", "Z",
           "9", "-", "+", "_", "=", "~", "'", "å", "é", "xn--", "example.se", "anna.lind",
           "SIZE=100", "BODY=8BITMIME", "<>"]


@pytest.mark.parametrize("arg", [
    "<anna.lind@bergstromsbygg.se>", "<a@b.se> SIZE=100 BODY=8BITMIME", "<a@b.se>SIZE=1",
    " <A+tag@Example.SE>", "<a@b.se>  X", "<a@b.se>\tX", "<a@b.se> ", "<a@b>",
    "<bounce+x=y@lists.example.org>", "<a@b.se>>",
])
def test_plain_paths_are_read_as_aiosmtpd_reads_them(arg: str) -> None:
    assert plain_path(arg) is not None, "plain: read without the header parser"
    assert plain_path(arg) == _AIOSMTPD._getaddr(arg)


@pytest.mark.parametrize("arg", [
    "<>", "<> SIZE=1", "a@b.se", "<a..b@c.se>", "<.a@c.se>", "<a@[127.0.0.1]>",
    '<"q x"@b.se>', "<a@b.>", "<a@-b.se>", "<@relay:a@b.se>", "<a(c)@b.se>",
    "<a@b.se> (c) X", "< a@b.se>", "<a@b.se >", "<anna@exempel.se>".replace("e", "é"),
])
def test_every_other_path_is_left_to_aiosmtpd(arg: str) -> None:
    assert plain_path(arg) is None


_ANY = st.lists(st.sampled_from(_PIECES), max_size=12).map("".join)


def _joined(pieces: list[str], size: int) -> st.SearchStrategy[str]:
    return st.lists(st.sampled_from(pieces), max_size=size).map("".join)


# Paths close to plain ones: valid pieces mostly, with one odd character now and then.
_PATHS = st.builds(
    lambda before, local, domain, after: f"{before}<{local}@{domain}>{after}",
    _joined(["", " ", "\t", "(c)", "@relay:"], 2),
    _joined(["a", "Z9", "anna.lind", ".", "+", "-", "_", "'", "(", '"', "å", " "], 5),
    _joined(["example", "se", "a", ".", "-", "xn--", "9", "[", "]", "å", " "], 5),
    _joined(["", " ", "\t", "SIZE=1", "(", ">", "x"], 3),
)


@settings(max_examples=3000, deadline=None)
@given(st.one_of(_ANY, _PATHS))
def test_a_plain_reading_never_differs_from_aiosmtpd(arg: str) -> None:
    plain = plain_path(arg)
    if plain is not None:
        assert plain == _AIOSMTPD._getaddr(arg)


def test_the_local_part_limit_still_holds() -> None:
    server = MaildSMTP(None)
    server.local_part_limit = 8
    assert server._getaddr("<short@b.se>") == ("short@b.se", "")
    assert server._getaddr("<much.too.long@b.se>") == (None, None)
    assert server._getaddr('<"much too long"@b.se>') == (None, None)
