"""One function from raw bytes to a frozen `ParsedMail`; damage is recorded, never fatal.

Bodies and attachments come from mail-parser. When mail-parser fails on a
message, the standard library's parser takes over; a message that neither
can read raises `UnparseableMail` (the caller quarantines it, raw bytes kept).
"""

from __future__ import annotations

import contextlib
import copy
import email
import email.message
import itertools
import logging
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from email.errors import HeaderParseError
from email.feedparser import BytesFeedParser
from email.header import decode_header
from email.parser import BytesParser
from email.policy import compat32
from email.utils import parsedate_to_datetime
from functools import cached_property, lru_cache
from typing import Any
from urllib.parse import unquote

import mailparser

from maild.addresses import MAX_ADDRESSES, Address, read_address_list
from maild.htmltext import html_to_text
from maild.log import get_logger

log = get_logger("maild.parse")
# mail-parser logs every MIME type it does not render; maild records defects itself.
logging.getLogger("mailparser").setLevel(logging.CRITICAL)

_MSGID = re.compile(r"<([^<>\s]+)>")
# An 8-bit header byte that compat32 could not decode, kept as a surrogate.
_SURROGATE = re.compile("[\udc80-\udcff]")
# A header line holds at most 998 characters (RFC 5322 2.1.1), so no longer Message-ID
# can be written; every column that keeps one holds this many.
MAX_MESSAGE_ID = 998
_MAX_HEADER_VALUE = 16_384
# RFC 5322 comments nest without limit, and the standard library's parsers recurse
# once per level: deeper nesting than this is flattened in the copy that is parsed.
MAX_COMMENT_NESTING = 32
_HEADER_BLOCK_END = re.compile(rb"\r?\n\r?\n")
_FOLDING = re.compile(r"[\r\n\t]+\s*")
_UNFOLD = re.compile(r"\r?\n(?=[ \t])")  # a line break that folds a header onto the next line
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")  # no character of a one-line header value


class UnparseableMail(Exception):
    """Neither mail-parser nor the standard library could read the message."""


@dataclass(frozen=True)
class Attachment:
    """A file carried by a message (or an inline image)."""

    filename: str | None
    content_type: str
    size: int
    content_id: str | None = None
    inline: bool = False


@dataclass(frozen=True)
class ParsedMail:
    """What maild needs to know about a message, whatever state it arrived in."""

    message_id: str | None
    in_reply_to: tuple[str, ...]
    references: tuple[str, ...]
    subject: str
    sender: Address | None
    reply_to: tuple[Address, ...]
    to: tuple[Address, ...]
    cc: tuple[Address, ...]
    date: datetime | None
    text: str
    html: str | None
    attachments: tuple[Attachment, ...]
    headers: tuple[tuple[str, str], ...]
    content_type: str
    defects: tuple[str, ...] = field(default=())
    parser: str = "mail-parser"
    part_types: tuple[str, ...] = field(default=())
    report_text: str = ""                                  # delivery-status parts, as text
    embedded_message_ids: tuple[str, ...] = field(default=())  # of returned messages

    def header(self, name: str) -> str | None:
        """The first value of header `name` (case-insensitive), decoded, or None."""
        return _first(self._by_name, name.lower())

    def header_all(self, name: str) -> tuple[str, ...]:
        """Every value of header `name` (case-insensitive), decoded, in order."""
        return tuple(self._by_name.get(name.lower(), ()))

    @cached_property
    def _by_name(self) -> dict[str, list[str]]:
        """The decoded values of each header, by lower-case name, in order (built once)."""
        return _header_index(self.headers)


def _header_index(headers: tuple[tuple[str, str], ...]) -> dict[str, list[str]]:
    """The values of `headers` by lower-case name, each name's in order."""
    index: dict[str, list[str]] = {}
    for key, value in headers:
        index.setdefault(key.lower(), []).append(value)
    return index


def decode_header_value(value: Any) -> str:
    """A header value as text: RFC 2047 words decoded, 8-bit bytes read as UTF-8 or Latin-1."""
    if isinstance(value, email.header.Header):
        value = str(value)
    text = str(value)
    if not text.isascii() and _SURROGATE.search(text):
        # compat32 keeps undecodable 8-bit header bytes as surrogates.
        data = text.encode("utf-8", "surrogateescape")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            text = data.decode("latin-1")
    if "=?" not in text:  # no encoded word: what decode_header would return as it is
        return _clean(text)
    try:
        parts = decode_header(text)
    except (ValueError, LookupError, AssertionError, HeaderParseError):
        # A broken encoded word (`=?utf-8?B?A?=`) is kept as the text it is.
        return _clean(text)
    pieces: list[str] = []
    for chunk, charset in parts:
        if isinstance(chunk, bytes):
            pieces.append(_decode_bytes(chunk, charset))
        else:
            pieces.append(chunk)
    # decode_header drops the space between an encoded word and plain text.
    return _clean("".join(pieces) if len(parts) > 1 else pieces[0] if pieces else "")


def _decode_bytes(data: bytes, charset: str | None) -> str:
    """`data` as text in `charset`; a broken or unknown charset name falls back to UTF-8."""
    for candidate in (charset, "utf-8", "windows-1252"):
        if not candidate:
            continue
        try:
            return data.decode(candidate)
        except (UnicodeDecodeError, LookupError, ValueError):  # ValueError: a NUL in the name
            continue
    return data.decode("latin-1")


def _clean(text: str) -> str:
    """Unfold and drop control characters: a header value is one line of text."""
    if not text.isprintable():  # a line break, a tab or another control character
        text = _CONTROL.sub("", _FOLDING.sub(" ", text))
    return text.strip()[:_MAX_HEADER_VALUE]


def _addresses(values: tuple[str, ...], defects: list[str]) -> tuple[Address, ...]:
    """The mailboxes of one address header's raw values (see `maild.addresses`)."""
    found: list[Address] = []
    for value in values:
        mailboxes, problems = read_address_list(value)
        found += mailboxes
        defects += problems
    return tuple(found[:MAX_ADDRESSES])


# The headers mail-parser would read again, for nothing maild uses: maild reads the
# addresses and the Date itself, and the trust module the Received lines it believes.
_HEADERS_READ_BY_MAILD = frozenset({"from", "sender", "to", "cc", "bcc", "reply-to",
                                    "delivered-to", "date", "resent-date", "received"})


def _without_headers_read_by_maild(message: email.message.Message) -> email.message.Message:
    """A shallow copy of `message` without the headers maild reads itself, for mail-parser's
    bodies.

    mail-parser parses every address header again with its own reader, which costs
    seconds for one long To (0.5 ms an address), and every Received line and Date
    (a third of its work on a real mailbox's mail) for its own diagnostics.
    """
    view = copy.copy(message)
    # The copy's own header list, made in one pass as `del view[name]` makes it for one
    # name (it rebinds `_headers`); `message` keeps its own.
    view._headers = [(name, value) for name, value in message._headers  # type: ignore[attr-defined]
                     if name.lower() not in _HEADERS_READ_BY_MAILD]
    return view


def _raw_header_all(message: email.message.Message, name: str) -> tuple[str, ...]:
    """Every value of header `name` as written: unfolded, 8-bit read as UTF-8, not decoded.

    Address headers are read from this form, so RFC 2047 encoded words cannot
    change the structure of an address list (they are decoded in names only).
    """
    wanted = name.lower()
    values: list[str] = []
    for key, value in message.raw_items():
        if str(key).lower() != wanted:
            continue
        text = str(value)
        if _SURROGATE.search(text):
            data = text.encode("utf-8", "surrogateescape")
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError:
                text = data.decode("latin-1")
        values.append(_UNFOLD.sub("", text))
    return tuple(values)


def _message_ids(value: str | None) -> tuple[str, ...]:
    """The Message-IDs `value` names, in order, once each; one longer than a header line
    can hold (`MAX_MESSAGE_ID`) is no Message-ID and is left out."""
    if not value:
        return ()
    ids = _MSGID.findall(value)
    if not ids and value.strip() and " " not in value.strip():
        ids = [value.strip()]
    return tuple(dict.fromkeys(found for found in ids if len(found) <= MAX_MESSAGE_ID))


def _read_headers(message: email.message.Message) -> tuple[tuple[str, str], ...]:
    headers: list[tuple[str, str]] = []
    # raw_items keeps 8-bit header bytes (RFC 6532 UTF-8 headers) as surrogates, which
    # decode_header_value turns back into text; items() would replace them with U+FFFD.
    for key, value in message.raw_items():
        try:
            headers.append((str(key), decode_header_value(value)))
        except Exception:
            headers.append((str(key), ""))
    return tuple(headers)


def _base64_size(text: str) -> int:
    """How many bytes base64 `text` decodes to, counted without decoding it (no copy)."""
    blanks = sum(text.count(char) for char in " \t\r\n" if char in text)
    symbols = len(text) - blanks
    padding = min(2, len(text.rstrip(" \t\r\n")) - len(text.rstrip(" \t\r\n=")))
    return max(0, symbols * 3 // 4 - padding)


def _attachment_from_mailparser(item: dict[str, Any]) -> Attachment:
    payload = item.get("payload") or ""
    if item.get("binary"):
        size = _base64_size(str(payload))
    else:
        size = len(str(payload).encode("utf-8", "replace"))
    content_id = (item.get("content-id") or "").strip() or None
    filename = item.get("filename") or None
    if filename and content_id and filename == content_id:
        filename = None
    disposition = (item.get("content-disposition") or "").lower()
    return Attachment(
        filename=decode_header_value(filename) if filename else None,
        content_type=(item.get("mail_content_type") or "application/octet-stream").lower(),
        size=size,
        content_id=content_id.strip("<>") if content_id else None,
        inline=bool(content_id) or disposition.startswith("inline"),
    )


@lru_cache(maxsize=2)
def _body_parser(base: type) -> type:
    """`base` (mail-parser's `MailParser`) without the two header dicts its parse ends with.

    `MailParser.parse` ends by decoding every header into `mail` and `mail_partial`,
    which maild never reads (it reads headers itself). Made from the `MailParser` of
    the moment, so that one put in its place (a test's broken one) is what runs.
    """
    return type("BodyParser", (base,), {"_make_mail": _no_header_dicts})


def _no_header_dicts(self: object, complete: bool = True) -> dict[str, Any]:
    return {}


def _bodies_with_mailparser(message: email.message.Message) -> tuple[
        str, str | None, tuple[Attachment, ...], list[str]]:
    # Reuses the parse, does not read the bytes again.
    parsed = _body_parser(mailparser.MailParser)(_without_headers_read_by_maild(message))
    text = "\n".join(part for part in parsed.text_plain if part)
    html_parts = [part for part in parsed.text_html if part]
    html = "\n".join(html_parts) if html_parts else None
    attachments = tuple(_attachment_from_mailparser(item) for item in parsed.attachments)
    defects = [str(item) for item in (parsed.defects or [])]
    return text, html, attachments, defects


def _bodies_with_stdlib(message: email.message.Message) -> tuple[str, str | None,
                                                                 tuple[Attachment, ...]]:
    texts: list[str] = []
    htmls: list[str] = []
    attachments: list[Attachment] = []
    for part in message.walk():
        if part.is_multipart():
            continue
        content_type = part.get_content_type()
        filename = _part_filename(part)
        disposition = decode_header_value(part.get("Content-Disposition") or "").lower()
        data = _part_payload(part)
        is_attachment = bool(filename) or disposition.startswith("attachment") or not (
            content_type.startswith("text/"))
        if is_attachment:
            content_id = decode_header_value(part.get("Content-ID") or "").strip("<>") or None
            attachments.append(Attachment(
                filename=filename, content_type=content_type, size=len(data),
                content_id=content_id,
                inline=bool(content_id) or disposition.startswith("inline")))
            continue
        decoded = _decode_bytes(data, _part_charset(part))
        (htmls if content_type == "text/html" else texts).append(decoded)
    return "\n".join(texts), ("\n".join(htmls) if htmls else None), tuple(attachments)


def _part_filename(part: email.message.Message) -> str | None:
    """A part's file name, decoded where it can be, else as written; None when it has none."""
    try:
        filename = part.get_filename()
    except Exception:  # a broken RFC 2231 parameter: read the raw parameter instead
        value = part.get_param("filename", header="content-disposition") or part.get_param(
            "name")
        filename = unquote(value[2], encoding="latin-1") if isinstance(value, tuple) else (
            value if isinstance(value, str) else None)
    return decode_header_value(filename) or None if filename else None


def _part_charset(part: email.message.Message) -> str | None:
    try:
        return part.get_content_charset()
    except Exception:
        return None


def _part_payload(part: email.message.Message) -> bytes:
    """A part's decoded bytes; the undecoded text when its transfer encoding is broken."""
    try:
        payload = part.get_payload(decode=True)
    except Exception:
        payload = str(part.get_payload()).encode("utf-8", "surrogateescape")
    return payload if isinstance(payload, bytes) else b""


def bound_comment_nesting(raw: bytes) -> tuple[bytes, bool]:
    """`raw` with header comments nested deeper than `MAX_COMMENT_NESTING` flattened.

    Only the top-level header block is touched, and only when something nests too
    deep; the second value says whether anything changed. The stored bytes are
    never this copy.
    """
    match = _HEADER_BLOCK_END.search(raw)
    head = raw[:match.start()] if match else raw
    if head.count(b"(") <= MAX_COMMENT_NESTING:
        return raw, False
    lines: list[bytes] = []
    depth = 0
    changed = False
    for line in head.split(b"\n"):
        if line[:1] not in (b" ", b"\t"):
            depth = 0  # a new header field
        kept = bytearray()
        escaped = False
        for byte in line:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # a backslash quotes the next character
                escaped = True
            elif byte == 0x28:  # (
                depth += 1
                if depth > MAX_COMMENT_NESTING:
                    changed = True
                    continue
            elif byte == 0x29 and depth > 0:  # )
                depth -= 1
                if depth >= MAX_COMMENT_NESTING:
                    continue
            kept.append(byte)
        lines.append(bytes(kept))
    rest = raw[match.start():] if match else b""
    return (b"\n".join(lines) + rest, True) if changed else (raw, False)


_FEED_CHUNK = 64 * 1024


def _pieces_of(raw: bytes) -> Iterator[bytes]:
    """`raw` in pieces of `_FEED_CHUNK` bytes."""
    view = memoryview(raw)
    for start in range(0, len(raw), _FEED_CHUNK):
        yield bytes(view[start:start + _FEED_CHUNK])


def _readable_pieces(pieces: Iterator[bytes]) -> tuple[Iterator[bytes], bool]:
    """The pieces with header comments nested too deep flattened (`bound_comment_nesting`).

    Pieces are gathered only until the end of the header block is certain; the second
    value says whether anything was flattened.
    """
    start = bytearray()
    for piece in pieces:
        searched = max(0, len(start) - 3)
        start += piece
        end = _HEADER_BLOCK_END.search(start, searched)
        # A match starting 4 bytes or more before the end is the first in the message too
        # (a match is at most 4 bytes long); one that starts later may still grow.
        if end is not None and end.start() + 4 <= len(start):
            break
    readable, flattened = bound_comment_nesting(bytes(start))
    del start
    return itertools.chain((readable,), pieces), flattened


def _message_from_pieces(pieces: Iterable[bytes]) -> email.message.Message:
    """What `email.message_from_bytes` returns for the pieces joined, fed a piece at a time.

    Given the whole message at once, the standard library copies it into a string
    buffer of up to four bytes a character first: about nine times the message at its
    peak. Fed in pieces, it holds little more than the parts it builds.
    """
    parser = BytesFeedParser(policy=compat32)
    for piece in pieces:
        for start in range(0, len(piece), _FEED_CHUNK):
            parser.feed(piece[start:start + _FEED_CHUNK] if len(piece) > _FEED_CHUNK else piece)
    return parser.close()


def parse_mail(raw: bytes) -> ParsedMail:
    """Parse `raw` into a `ParsedMail`; raises `UnparseableMail` only if nothing can read it.

    Whatever nests too deep for the standard library's recursive parsers (comments
    in a header, MIME parts inside parts) is degraded and recorded as a defect:
    the headers and what text there is are still read.
    """
    readable, flattened = bound_comment_nesting(raw)
    return _parse(_pieces_of(readable), flattened, whole=lambda: raw)


def parse_mail_pieces(pieces: Iterable[bytes], *, whole: Callable[[], bytes]) -> ParsedMail:
    """`parse_mail` of the message that `pieces` make up, read a piece at a time.

    The message is never held whole, unless a MIME structure nests too deep: then
    its header block is read from `whole()`, which returns the message's bytes.
    """
    readable, flattened = _readable_pieces(iter(pieces))
    return _parse(readable, flattened, whole)


def _parse(readable: Iterable[bytes], flattened: bool, whole: Callable[[], bytes]
           ) -> ParsedMail:
    defects = ["CommentNestingTooDeep"] if flattened else []
    body_readable = True
    try:
        message = _message_from_pieces(readable)
    except RecursionError:
        message = BytesParser(policy=compat32).parsebytes(
            bound_comment_nesting(whole())[0], headersonly=True)
        defects.append("MimeNestingTooDeep")
        body_readable = False
    except Exception as error:
        raise UnparseableMail(f"the message cannot be read at all: {error}") from error
    defects += [type(defect).__name__ for defect in message.defects]
    parser = "mail-parser"
    text: str = ""
    html: str | None = None
    attachments: tuple[Attachment, ...] = ()
    try:
        if body_readable:
            text, html, attachments, extra = _bodies_with_mailparser(message)
            defects.extend(extra)
    except Exception as error:
        log.info("parse.fallback", reason=f"{type(error).__name__}: {error}"[:300])
        parser = "stdlib"
        try:
            text, html, attachments = _bodies_with_stdlib(message)
        except RecursionError:
            defects.append("MimeNestingTooDeep")
        except Exception as fallback_error:
            raise UnparseableMail(
                f"mail-parser failed ({type(error).__name__}: {error}) and so did the "
                f"standard library ({type(fallback_error).__name__}: {fallback_error})"
            ) from fallback_error
    headers = _read_headers(message)
    by_name = _header_index(headers)
    if not text.strip() and html:
        text = html_to_text(html)
    # A NUL is no character of any text, and PostgreSQL stores none.
    text = text.replace("\x00", "")
    html = html.replace("\x00", "") if html is not None else None
    senders = _addresses(_raw_header_all(message, "From"), defects) or _addresses(
        _raw_header_all(message, "Sender"), defects)
    reply_to, to, cc = (_addresses(_raw_header_all(message, name), defects)
                        for name in ("Reply-To", "To", "Cc"))
    date: datetime | None = None
    date_header = _first(by_name, "date")
    if date_header:
        try:
            date = parsedate_to_datetime(date_header)
        except (TypeError, ValueError, IndexError):
            defects.append("InvalidDateHeader")
    message_id_header = _first(by_name, "message-id")
    message_ids = _message_ids(message_id_header)
    if not message_ids and message_id_header and len(message_id_header) > MAX_MESSAGE_ID:
        defects.append("MessageIdTooLong")
    part_types, returned = _walk_parts(message)
    mail = ParsedMail(
        message_id=message_ids[0] if message_ids else None,
        in_reply_to=_message_ids(_first(by_name, "in-reply-to")),
        references=_message_ids(" ".join(by_name.get("references", ()))),
        subject=_first(by_name, "subject") or "",
        sender=senders[0] if senders else None,
        reply_to=reply_to,
        to=to,
        cc=cc,
        date=date,
        text=text,
        html=html,
        attachments=attachments,
        headers=headers,
        # `walk` yields the message itself first
        content_type=part_types[0] if part_types else message.get_content_type(),
        defects=tuple(dict.fromkeys(defects)),
        parser=parser,
        part_types=part_types,
        **returned,
    )
    # The index of its headers is the one just read from (`ParsedMail.header` builds it
    # from the same headers).
    vars(mail)["_by_name"] = by_name
    return mail


def _first(by_name: dict[str, list[str]], name: str) -> str | None:
    """The first value of the lower-case header `name` in `by_name`, or None."""
    values = by_name.get(name)
    return values[0] if values else None


_REPORT_TYPES = frozenset({"message/delivery-status", "message/global-delivery-status",
                           "text/rfc822-headers", "message/rfc822-headers"})
_MAX_REPORT_TEXT = 32 * 1024


def _walk_parts(message: email.message.Message, limit: int = 200
                ) -> tuple[tuple[str, ...], dict[str, Any]]:
    """The content type of every MIME part (the first `limit`, nested ones included), and
    what a bounce carries of the message it returns (report text and Message-IDs), read in
    one walk of the parts."""
    types: list[str] = []
    texts: list[str] = []
    ids: list[str] = []
    returning = True  # the returned message is still being read
    with contextlib.suppress(Exception):  # a broken structure yields what was read
        for part in message.walk():
            content_type = part.get_content_type()
            if len(types) < limit:
                types.append(content_type)
            if returning:
                try:
                    returning = _read_returned(part, content_type, texts, ids)
                except Exception:  # what was read of it stands
                    returning = False
            if not returning and len(types) >= limit:
                break
    return tuple(types), {"report_text": "\n".join(texts)[:_MAX_REPORT_TEXT],
                          "embedded_message_ids": tuple(dict.fromkeys(ids))}


def _read_returned(part: email.message.Message, content_type: str, texts: list[str],
                   ids: list[str]) -> bool:
    """Add what `part` carries of a returned message to `texts` and `ids`; whether to read on
    (until `_MAX_REPORT_TEXT` characters of report)."""
    if content_type in _REPORT_TYPES:
        text = part.as_string()[:_MAX_REPORT_TEXT]
        texts.append(text)
        ids += _MSGID.findall(" ".join(re.findall(r"(?im)^message-id:\s*(.*)$", text)))
    elif content_type in ("message/rfc822", "message/global"):
        payload = part.get_payload()
        inner = payload[0] if isinstance(payload, list) and payload else None
        if isinstance(inner, email.message.Message):
            ids += _message_ids(decode_header_value(inner.get("Message-ID", "")))
    return sum(len(text) for text in texts) <= _MAX_REPORT_TEXT
