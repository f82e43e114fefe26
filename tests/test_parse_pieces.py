"""A message parsed from pieces (as read from storage) is parsed as from its whole bytes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from maild.parse import parse_mail, parse_mail_pieces
from tests.conftest import FIXTURES
from tests.test_hostile_input import HEAD

EMAILS = sorted(FIXTURES.glob("*.eml"))
DEEP_COMMENT = (HEAD + b"Subject: " + b"(" * 600 + b"Djupt\r\n"
                + b"X-Long: " + b"a" * 300 + b"\r\n\r\nBokningen.\r\n")
DEEP_MIME = (HEAD + b"Subject: Djupt\r\nMIME-Version: 1.0\r\n"
             + b"Content-Type: message/rfc822\r\n\r\n" * 1500 + b"\r\nx\r\n")
# A blank line whose CR and LF fall in different pieces, and one without a blank line.
SPLIT_SEPARATOR = HEAD + b"Subject: Delad\r\n\r\nText\r\n\r\nmer\r\n"
NO_BODY = HEAD + b"Subject: " + b"(" * 40 + b"x" + b")" * 40


def _cut(raw: bytes, size: int) -> Iterator[bytes]:
    return (raw[start:start + size] for start in range(0, len(raw), size))


@pytest.mark.parametrize("size", [1, 3, 64, 4096])
@pytest.mark.parametrize("raw", [DEEP_COMMENT, DEEP_MIME, SPLIT_SEPARATOR, NO_BODY],
                         ids=["deep-comment", "deep-mime", "split-separator", "no-body"])
def test_hostile_messages_in_pieces_parse_as_whole(raw: bytes, size: int) -> None:
    assert parse_mail_pieces(_cut(raw, size), whole=lambda: raw) == parse_mail(raw)


@pytest.mark.parametrize("path", EMAILS, ids=[path.stem for path in EMAILS])
def test_fixture_mail_in_pieces_parses_as_whole(path: Path) -> None:
    raw = path.read_bytes()
    whole = parse_mail(raw)
    for size in (7, 100, 1000):
        assert parse_mail_pieces(_cut(raw, size), whole=lambda: raw) == whole


def test_the_whole_message_is_read_only_when_mime_nests_too_deep() -> None:
    def refused() -> bytes:
        raise AssertionError("read whole")

    mail = parse_mail_pieces(_cut(SPLIT_SEPARATOR, 5), whole=refused)
    assert mail.text.startswith("Text")
    assert "MimeNestingTooDeep" in parse_mail_pieces(_cut(DEEP_MIME, 50),
                                                     whole=lambda: DEEP_MIME).defects
