"""Parsing never fails on damage: charsets, encodings, HTML-only, broken MIME, fallbacks."""

from __future__ import annotations

import contextlib

import pytest

import maild.parse as parse_module
from maild.parse import UnparseableMail, parse_mail
from tests.conftest import CORPUS


def test_latin1_body_and_encoded_headers() -> None:
    raw = ("From: =?iso-8859-1?Q?G=F6ran_=C5str=F6m?= <goran@kund.se>\r\n"
           "To: support@example.se\r\n"
           "Subject: =?iso-8859-1?B?U+RrZXJoZXRza29udHJvbGwgZvZyIGFuduRuZGFyZQ==?=\r\n"
           "MIME-Version: 1.0\r\n"
           "Content-Type: text/plain; charset=iso-8859-1\r\n"
           "Content-Transfer-Encoding: 8bit\r\n\r\n").encode("ascii") + (
        "Hej! Inloggningen fungerar inte för användare i Åre.\r\n").encode("iso-8859-1")
    mail = parse_mail(raw)
    assert mail.sender is not None
    assert mail.sender.name == "Göran Åström"
    assert mail.subject == "Säkerhetskontroll för användare"
    assert "användare i Åre" in mail.text


def test_windows_1252_quoted_printable_body() -> None:
    raw = (b"From: kund@foretag.se\r\nSubject: Faktura\r\nMIME-Version: 1.0\r\n"
           b"Content-Type: text/plain; charset=windows-1252\r\n"
           b"Content-Transfer-Encoding: quoted-printable\r\n\r\n"
           b"Beloppet =93500 =80 =97 netto=94 st=E4mmer inte.\r\n")
    mail = parse_mail(raw)
    assert "“500 € — netto” stämmer inte" in mail.text


def test_html_only_message_becomes_text() -> None:
    raw = (b"From: kund@foretag.se\r\nSubject: html\r\nMIME-Version: 1.0\r\n"
           b"Content-Type: text/html; charset=utf-8\r\n\r\n"
           b"<html><head><style>p{color:red}</style></head><body><p>Hej!</p>"
           b"<p>Sidan <b>laddar</b> inte.</p><blockquote>gammalt svar</blockquote></body></html>")
    mail = parse_mail(raw)
    assert mail.html is not None
    assert "Hej!" in mail.text
    assert "Sidan laddar inte." in mail.text
    assert "> gammalt svar" in mail.text
    assert "color" not in mail.text


def test_attachments_and_inline_images_are_listed() -> None:
    raw = (b"From: a@kund.se\r\nSubject: bild\r\nMIME-Version: 1.0\r\n"
           b'Content-Type: multipart/mixed; boundary="b1"\r\n\r\n'
           b"--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nSe bilden.\r\n"
           b"--b1\r\nContent-Type: image/png\r\nContent-ID: <skarm1@kund>\r\n"
           b"Content-Transfer-Encoding: base64\r\n\r\niVBORw0KGgoAAAANSUhEUg==\r\n"
           b'--b1\r\nContent-Type: application/pdf; name="faktura.pdf"\r\n'
           b'Content-Disposition: attachment; filename="faktura.pdf"\r\n'
           b"Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n--b1--\r\n")
    mail = parse_mail(raw)
    by_type = {a.content_type: a for a in mail.attachments}
    assert by_type["image/png"].inline
    assert by_type["image/png"].content_id == "skarm1@kund"
    assert by_type["image/png"].size == 16
    assert by_type["application/pdf"].filename == "faktura.pdf"
    assert by_type["application/pdf"].size == 9


def test_header_with_encoded_newlines_stays_one_line() -> None:
    raw = (b"From: a@kund.se\r\nSubject: =?utf-8?Q?Hej=0D=0ABcc:_victim@example.org?=\r\n"
           b"\r\nbody\r\n")
    mail = parse_mail(raw)
    assert "\n" not in mail.subject
    assert "\r" not in mail.subject
    assert mail.subject == "Hej Bcc: victim@example.org"


def test_garbage_bytes_still_parse_with_defects() -> None:
    raw = b"\x00\xff\xfe garbage without any header\r\n\r\n\x80\x81"
    mail = parse_mail(raw)
    assert mail.sender is None
    assert mail.subject == ""


def test_display_name_is_not_the_address() -> None:
    raw = b'From: "support@kund.se" <x@gmail.com>\r\nSubject: hej\r\n\r\nhej\r\n'
    mail = parse_mail(raw)
    assert mail.sender is not None
    assert mail.sender.address == "x@gmail.com"


def test_mailparser_failure_falls_back_to_stdlib(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(message: object) -> None:
        raise RuntimeError("mail-parser gave up")

    monkeypatch.setattr(parse_module.mailparser, "MailParser", broken)
    mail = parse_mail(b"From: a@kund.se\r\nSubject: hej\r\n\r\nSidan laddar inte.\r\n")
    assert mail.parser == "stdlib"
    assert "Sidan laddar inte." in mail.text


def test_message_no_parser_reads_is_unparseable(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object) -> None:
        raise RuntimeError("cannot read")

    monkeypatch.setattr(parse_module.mailparser, "MailParser", broken)
    monkeypatch.setattr(parse_module, "_bodies_with_stdlib", broken)
    with pytest.raises(UnparseableMail, match="mail-parser failed"):
        parse_mail(b"From: a@kund.se\r\n\r\nx")


def test_every_corpus_message_parses_or_is_declared_unparseable() -> None:
    files = sorted(CORPUS.glob("*/*.eml"))
    assert len(files) > 300
    for path in files:
        with contextlib.suppress(UnparseableMail):
            parse_mail(path.read_bytes())


def test_attachment_sizes_are_exact_without_decoding_and_broken_base64_still_gets_one() -> None:
    from email.message import EmailMessage

    message = EmailMessage()
    message["From"] = "anna.lind@bergstromsbygg.se"
    message["Subject"] = "Loggar"
    message.set_content("Här är loggarna.\n")
    for size in (0, 1, 2, 3, 57, 58, 100_003):
        message.add_attachment(bytes(range(256)) * (size // 256) + bytes(size % 256),
                               maintype="application", subtype="octet-stream",
                               filename=f"logg-{size}.bin")
    parsed = parse_mail(message.as_bytes())
    assert {a.filename: a.size for a in parsed.attachments} == {
        f"logg-{size}.bin": size for size in (0, 1, 2, 3, 57, 58, 100_003)}

    broken = (b"From: anna.lind@bergstromsbygg.se\r\nSubject: Trasig\r\nMIME-Version: 1.0\r\n"
              b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
              b"Content-Type: text/plain\r\n\r\nHej\r\n--b\r\n"
              b"Content-Type: application/octet-stream; name=x.bin\r\n"
              b"Content-Disposition: attachment; filename=x.bin\r\n"
              b"Content-Transfer-Encoding: base64\r\n\r\n@@@not base64 at all===\r\n--b--\r\n")
    [attachment] = parse_mail(broken).attachments
    assert attachment.filename == "x.bin" and attachment.size >= 0


def _bounce_after_parts(count: int) -> bytes:
    """A bounce whose report and returned message come after `count` text parts."""
    parts = [b"Content-Type: text/plain\r\n\r\npart %d\r\n" % index for index in range(count)]
    parts.append(b"Content-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.kund.se\r\n"
                 b"\r\nFinal-Recipient: rfc822; bo@kund.se\r\nAction: failed\r\n"
                 b"Status: 5.1.1\r\n")
    parts.append(b"Content-Type: message/rfc822\r\n\r\nFrom: support@example.se\r\n"
                 b"Message-ID: <MD-2026-00042-7.ack@example.se>\r\nSubject: Re\r\n\r\nHej\r\n")
    body = b"".join(b"--b\r\n" + part for part in parts) + b"--b--\r\n"
    return (b"From: MAILER-DAEMON@mx.kund.se\r\nTo: support@example.se\r\n"
            b"Subject: Undelivered Mail\r\nDate: Mon, 16 Nov 2026 10:00:00 +0100\r\n"
            b"Message-ID: <bounce-1@mx.kund.se>\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: multipart/report; report-type=delivery-status; boundary=b\r\n"
            b"\r\n") + body


@pytest.mark.parametrize("count", [1, 198, 250])
def test_a_bounce_is_read_past_the_part_types_kept(count: int) -> None:
    """The first 200 part types are kept, while the report and the returned message are
    read however many parts come before them; the headers answer as written."""
    mail = parse_mail(_bounce_after_parts(count))
    # The report's two blocks are parts of their own (text/plain), as is the returned body.
    types = ["multipart/report", *["text/plain"] * count, "message/delivery-status",
             "text/plain", "text/plain", "message/rfc822", "text/plain"]
    assert mail.part_types == tuple(types[:200])
    assert mail.content_type == "multipart/report"
    assert "Status: 5.1.1" in mail.report_text
    assert mail.embedded_message_ids == ("MD-2026-00042-7.ack@example.se",)
    assert (mail.message_id, mail.subject) == ("bounce-1@mx.kund.se", "Undelivered Mail")
    assert (mail.header("message-ID"), mail.header_all("x-none")) == (
        "<bounce-1@mx.kund.se>", ())
    assert mail.date is not None and mail.date.utcoffset() is not None
