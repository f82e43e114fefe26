"""The description check does not ask again what the machine-mail check has answered.

Once `classify_machine` has found no signal in a mail, `detect_description` reads
only the Return-Path (the one thing it sees that the other did not); its answer must
be the one its full check gives. Every mail of the corpus is tried with Return-Paths
that the full check reads differently.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from maild.checks import check_items, description, split_body
from maild.classify.machine import classify_machine
from maild.parse import UnparseableMail, parse_mail
from tests.mailmaker import support_mail

ROOT = Path(__file__).resolve().parent.parent
RETURN_PATHS = (None, "<>", "<anna.lind@bergstromsbygg.se>", "<MAILER-DAEMON@mx.example.se>",
                "< Post_Master@example.se >", "<no-reply@example.se>", "")
ENVELOPES = (None, "anna.lind@bergstromsbygg.se", "no-reply@example.se")


def _corpus() -> list[bytes]:
    paths = sorted([*(ROOT / "tests" / "corpus").rglob("*"), *(ROOT / "fixtures").rglob("*")])
    return [path.read_bytes() for path in paths if path.is_file()
            and path.suffix not in (".tsv", ".md", ".toml", ".json")
            and not path.name.startswith(("LICENSE", "README"))]


def test_every_corpus_mail_a_person_wrote_is_read_as_the_full_check_reads_it() -> None:
    compared = 0
    for raw in [*_corpus(), support_mail()]:
        for return_path in RETURN_PATHS:
            with_path = raw if return_path is None else (
                b"Return-Path: " + return_path.encode() + b"\r\n" + raw)
            try:
                mail = parse_mail(with_path)
            except UnparseableMail:
                continue
            for envelope in ENVELOPES:
                if classify_machine(mail, envelope) is not None:
                    continue
                assert description._machine_written(mail, no_machine_signal=True) \
                    == description._machine_written(mail), (return_path, envelope)
                compared += 1
    assert compared > 1000


@pytest.mark.parametrize("return_path", [b"<>", b"<MAILER-DAEMON@mx.example.se>"])
def test_a_return_path_of_a_mail_system_still_leaves_the_description_missing(
        return_path: bytes) -> None:
    mail = parse_mail(b"Return-Path: " + return_path + b"\r\n" + support_mail())
    assert classify_machine(mail, "anna.lind@bergstromsbygg.se") is None
    body = split_body(mail.text, "Anna Lind")
    assert not description.detect_description(mail, body).present
    assert not check_items(mail, ["description"], no_machine_signal=True)[0].present
    plain = parse_mail(support_mail())
    assert check_items(plain, ["description"], no_machine_signal=True)[0].present
