"""How maild writes a mail: the composition rules every composer uses (RFC 5322, 2047, 6532).

- Lines end in CRLF, everywhere, also inside an attached original.
- A header line is folded at 78 characters where it can be, and never exceeds
  998 octets: text is folded between words, long or non-ASCII text becomes a
  run of RFC 2047 encoded words of at most 75 characters each.
- An address is an address: `local@domain` with the domain as A-label (see
  `address.py`); only a display name is ever encoded, never the address.
- Text from outside (a subject) is shortened to `TEXT_LIMIT` characters and
  loses its control characters before it is written.
- Every step is linear in the size of its input.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from email.utils import format_datetime
from functools import lru_cache

from maild.parse import MAX_COMMENT_NESTING
from maild.respond.address import mail_address

FOLD = 78
LINE_LIMIT = 998
TEXT_LIMIT = 250         # characters of outside text (a subject) in one header
NAME_LIMIT = 100         # characters of a display name
# Encoded words of at most 60 characters (RFC 2047 allows 75), so that the first
# one still fits on the field name's line within 78.
_WORD_BUDGET = 60 - len("=?utf-8?q??=")
_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
_PLAIN_WORD = re.compile(r"[!-~]{1,60}")
_ATOM_PHRASE = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~ -]*")
_MSG_ID = re.compile(r"[!-;=?-~]{1,250}")  # visible ASCII without < and >
# The characters an encoded word may carry as themselves in any header, phrases
# included (RFC 2047 5(3)); everything else is written =XX per UTF-8 octet.
_PHRASE_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!*+-/")


def clean_text(text: str, limit: int = TEXT_LIMIT) -> str:
    """`text` on one line: control characters and runs of spaces made one space, shortened."""
    single = " ".join(_CONTROLS.sub(" ", text[: limit * 4]).split())
    return single if len(single) <= limit else single[: limit - 1].rstrip() + "…"


def _q_char(char: str) -> str:
    if char in _PHRASE_SAFE:
        return char
    if char == " ":
        return "_"
    return "".join(f"={octet:02X}" for octet in char.encode("utf-8", "surrogatepass"))


def encoded_words(text: str) -> list[str]:
    """`text` as RFC 2047 Q encoded words of at most 60 characters, never splitting a character."""
    words: list[str] = []
    current: list[str] = []
    length = 0
    for char in text:
        piece = _q_char(char)
        if length + len(piece) > _WORD_BUDGET and current:
            words.append("=?utf-8?q?" + "".join(current) + "?=")
            current, length = [], 0
        current.append(piece)
        length += len(piece)
    if current:
        words.append("=?utf-8?q?" + "".join(current) + "?=")
    return words


def _fold(name: str, atoms: Iterable[str]) -> str:
    """`Name: atom atom ...` folded before an atom whenever the line would pass 78 characters."""
    lines: list[str] = []
    line = f"{name}:"
    for atom in atoms:
        if len(line) + 1 + len(atom) > FOLD and line.strip() not in ("", f"{name}:"):
            lines.append(line)
            line = " " + atom
        else:
            line += " " + atom
    lines.append(line)
    return "\r\n".join(lines)


def _text_atoms(text: str) -> list[str]:
    """Plain words as they are; each run of words that need encoding as encoded words."""
    atoms: list[str] = []
    run: list[str] = []
    for word in text.split(" "):
        if _PLAIN_WORD.fullmatch(word) and "=?" not in word:
            if run:
                atoms += encoded_words(" ".join(run))
                run = []
            atoms.append(word)
        elif word:
            run.append(word)
    if run:
        atoms += encoded_words(" ".join(run))
    return atoms


def unstructured(name: str, text: str, limit: int = TEXT_LIMIT) -> str:
    """A text header (`Subject`) from any text: cleaned, shortened, encoded where needed, folded."""
    return _fold(name, _text_atoms(clean_text(text, limit)))


def token(name: str, value: str) -> str:
    """A header whose value maild made itself (`Date`, `X-Maild-Loop`), folded between words.

    ASCII stays as it is (never encoded: a loop marker must read back exactly);
    anything else is encoded like text.
    """
    text = clean_text(value, LINE_LIMIT - len(name) - 2)
    return _fold(name, text.split(" ") if text.isascii() else _text_atoms(text))


def date(moment: datetime) -> str:
    """The `Date` header of a mail composed at `moment`, in `moment`'s own offset.

    A batch composes all its mails at one moment: the header is written once for it.
    """
    return _date(moment, moment.utcoffset())


@lru_cache(maxsize=8)
def _date(moment: datetime, offset: timedelta | None) -> str:
    # The offset is part of the key: one moment in two time zones compares equal, but
    # its header names each zone's own time.
    return token("Date", format_datetime(moment))


def _phrase(display: str) -> list[str]:
    """A display name as atoms: plain, quoted, or encoded words when it is not ASCII."""
    name = clean_text(display, NAME_LIMIT)
    if not name:
        return []
    if not name.isascii():
        return encoded_words(name)
    if _ATOM_PHRASE.fullmatch(name):
        return name.split(" ")
    return ['"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"']


def addresses(name: str, mailboxes: Sequence[tuple[str, str]]) -> str:
    """An address header (`To`, `From`, `Reply-To`) from (display name, address) pairs.

    Raises `UnusableAddress` for an address that cannot be written.
    """
    atoms: list[str] = []
    for index, (display, address) in enumerate(mailboxes):
        wire = str(mail_address(address))
        phrase = _phrase(display)
        parts = [*phrase, f"<{wire}>"] if phrase else [wire]
        if index < len(mailboxes) - 1:
            parts[-1] += ","
        atoms += parts
    return _fold(name, atoms)


def message_id(value: str | None) -> str | None:
    """`<id>` for a Message-ID fit to be written, or None for one that is not (and is dropped)."""
    if not value:
        return None
    bare = value.strip().removeprefix("<").removesuffix(">")
    return f"<{bare}>" if _MSG_ID.fullmatch(bare) else None


def message_ids(name: str, values: Iterable[str | None]) -> str | None:
    """`In-Reply-To`/`References` from the ids fit to be written; None when none is."""
    ids = [written for value in values if (written := message_id(value))]
    return _fold(name, ids) if ids else None


_TEXT_PART_HEADERS = (b'Content-Type: text/plain; charset="utf-8"\r\n'
                      b"Content-Transfer-Encoding: quoted-printable\r\n")


def _quoted_printable(text: str) -> bytes:
    """`text` in UTF-8 quoted-printable: lines of at most 76 octets, CRLF line endings."""
    return crlf_lines(binascii.b2a_qp(text.encode("utf-8", "surrogatepass"), istext=True))


def head(fields: Sequence[str | None]) -> bytes:
    """The header fields made by the functions above, each ending in CRLF."""
    return "".join(field + "\r\n" for field in fields if field).encode("utf-8")


def compose_text(fields: Sequence[str | None], text: str) -> bytes:
    """The whole mail: `fields` (made by the functions above), then `text` as its one part.

    Written directly, without building and flattening a MIME tree.
    """
    return (head(fields) + b"MIME-Version: 1.0\r\n" + _TEXT_PART_HEADERS + b"\r\n"
            + _quoted_printable(text))


def comments_nest_too_deep(lines: bytes) -> bool:
    """Whether parentheses nest deeper than `MAX_COMMENT_NESTING` in some field of `lines`.

    Every line counts, a header's continuation lines with the line they continue, in
    the message's own header and in those of the messages it carries; a body line
    that merely looks so deep counts too, which only means the original is attached
    as a file. Cheap unless the message has that many "(" at all.
    """
    if lines.count(b"(") <= MAX_COMMENT_NESTING:
        return False
    depth = 0
    for line in lines.split(b"\r\n"):
        if line[:1] not in (b" ", b"\t"):
            depth = 0  # a new field, or a body line: what nested before is over
        if b"(" not in line and b")" not in line:
            continue
        for match in _PARENTHESIS.finditer(line):
            depth = depth + 1 if match.group() == b"(" else max(depth - 1, 0)
            if depth > MAX_COMMENT_NESTING:
                return True
    return False


_PARENTHESIS = re.compile(rb"[()]")


def body_with_original(text: str, original: bytes, *, opaque: bool = False) -> list[bytes]:
    """A mail's body after its header fields, as parts: a text/plain part with `text`,
    then `original` attached with CRLF line endings.

    As message/rfc822 when its lines fit in a mail (at most 998 octets, no NUL) and
    no comment in it nests deeper than maild's parser reads them (a mail reader's
    parser may recurse on each level until it fails), and not `opaque` (a MIME
    structure nested as deep, which only parsing it finds); otherwise as a base64
    `original.eml` file, which any mail client opens. `original` itself is one of the
    parts when it is attached as it is (CRLF line endings, as SMTP delivers it), not a
    copy of it. The same for every mail that carries `text` and `original`: made once,
    it serves each of them, and a large original is examined (and encoded) once.
    """
    lines = crlf_lines(original)
    attached: list[bytes]
    if opaque or b"\0" in lines or has_long_line(lines) or comments_nest_too_deep(lines):
        attached = [b"Content-Type: application/octet-stream\r\n"
                    b"Content-Transfer-Encoding: base64\r\n"
                    b'Content-Disposition: attachment; filename="original.eml"\r\n\r\n',
                    crlf_lines(base64.encodebytes(original))]
    else:
        encoding = b"7bit" if lines.isascii() else b"8bit"
        attached = [b"Content-Type: message/rfc822\r\n"
                    b"Content-Transfer-Encoding: " + encoding + b"\r\n"
                    b'Content-Disposition: inline; filename="original.eml"\r\n\r\n', lines]
    summary = _quoted_printable(text)
    boundary = _boundary(summary, *attached)
    return [
        b"MIME-Version: 1.0\r\n",
        b'Content-Type: multipart/mixed; boundary="' + boundary + b'"\r\n\r\n',
        b"--" + boundary + b"\r\n", _TEXT_PART_HEADERS, b"\r\n", summary,
        b"--" + boundary + b"\r\n", *attached,
        b"--" + boundary + b"--\r\n",
    ]


def _boundary(*parts: bytes) -> bytes:
    """A multipart boundary that occurs in none of `parts`."""
    while True:
        boundary = b"=_maild_" + secrets.token_hex(12).encode("ascii")
        if not any(boundary in part for part in parts):
            return boundary


def crlf_lines(raw: bytes) -> bytes:
    """`raw` with every line ending (LF, CR, CRLF) made CRLF, ending in one.

    Mail that already has only CRLF endings (as SMTP delivers it) is returned as it is,
    and mail with only LF endings (as an MTA's pipe and most files have it) is converted
    in one pass, so a large original is not copied line by line.
    """
    if b"\r" not in raw:
        crlf = raw.replace(b"\n", b"\r\n")
        return crlf if crlf.endswith(b"\r\n") or not crlf else crlf + b"\r\n"
    if raw.count(b"\r\n") == raw.count(b"\n") == raw.count(b"\r"):
        return raw if raw.endswith(b"\r\n") or not raw else raw + b"\r\n"
    lines = re.split(rb"\r\n|\r|\n", raw)
    if lines and lines[-1] == b"":
        lines.pop()
    return b"".join(line + b"\r\n" for line in lines)


def has_long_line(lines: bytes) -> bool:
    """Whether a line of `lines` (CRLF line endings) is longer than a mail allows (998 octets).

    Looks for the last line end within the next 1000 octets: the lines before it are
    short, and if there is none, the line from here is long. No copy of the lines,
    and one step covers many of them.
    """
    start = 0
    while True:
        # A line with its CR and LF takes at most LINE_LIMIT + 2 octets.
        end = lines.rfind(b"\n", start, start + LINE_LIMIT + 2)
        if end == -1:
            return len(lines) - start > LINE_LIMIT
        start = end + 1
