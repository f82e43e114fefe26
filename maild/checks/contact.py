"""`contact_name_title` and `contact_details`: who the contact person is and how to reach them.

Definitions (the sender's own text and signature; quoted and forwarded mail
are not read):

- `contact_name_title`: a line that is a person's name (two to four
  capitalised words, or the sender's display name) with a job title on the
  same line after a comma, dash, bar or bracket ("Anna Lind, IT-ansvarig",
  "Anna Lind (IT-ansvarig)") or on one of the next two non-empty lines ("Anna
  Lind" / "IT-ansvarig"; "Johan Bergström" / "VD, Bergströms Bygg AB"). A
  title is a word such as VD, CEO, CTO, Manager, Developer, Consultant, Head
  of ..., Lead, Founder, or a Swedish or German compound ending in -ansvarig,
  -chef, -förvaltare, -utvecklare, -koordinator, -assistent, -ledare,
  -tekniker, -konsult, -ägare, -leiter ... A name with only a company, a phone
  number or "/Anna" has no title.
- `contact_details`: a telephone number or a postal address. A number is
  Swedish (0 and 8-10 digits: 08-588 340 59, 070-330 11 89, 0647-155 20) or
  international (+ or 00, country code, 8-15 digits: +46 70 330 11 89,
  0046 70 330 11 89, +44 7700 900 412). An address is a Swedish postcode with
  its town at the start of a line or after a comma ("582 22 Linköping",
  "Storgatan 14, 931 30 Skellefteå"), or a street line with a postcode
  ("Pärnu mnt 139, 11317 Tallinn", "Harbour Road, Felixstowe IP11 3XY").
  Dates, invoice and order numbers ("2026-4471"), times and postcodes alone are
  no contact details; neither is an e-mail address, which the sender's From
  already gives.
"""

from __future__ import annotations

import re

from maild.checks.quoting import BodyParts, looks_like_name
from maild.checks.result import ItemResult, found, missing
from maild.parse import ParsedMail

_TITLE_SUFFIX = re.compile(
    r"(?:ansvarig|chef|förvaltare|utvecklare|koordinator|samordnare|assistent|ledare|"
    r"tekniker|handläggare|konsult|säljare|strateg|ekonom|administratör|sekreterare|"
    r"specialist|ingenjör|arkitekt|analytiker|inköpare|direktör|designer|redaktör|"
    r"controller|rådgivare|ägare|grundare|kommunikatör|producent|revisor|jurist|advokat|"
    r"sjuksköterska|läkare|rektor|ordförande|medarbetare|planerare|förman|intendent|"
    r"registrator|operatör|representant|mäklare|expert|"
    r"leiter|leiterin|geschäftsführer|geschäftsführerin|berater|beraterin|entwickler)$")
_TITLE_WORDS = frozenset(str.split("""
vd ceo cto cfo coo cio cmo ciso cso cpo vp evp svp md
manager developer engineer consultant director officer lead head founder co-founder
cofounder owner president coordinator assistant specialist administrator analyst
architect designer partner executive representative supervisor technician accountant
controller advisor adviser secretary receptionist chairman chairwoman chair principal
associate intern editor producer strategist agent programmer tester scientist nurse
doctor teacher clerk buyer planner dispatcher operator
"""))
_SEGMENTS = re.compile(r"\s*(?:[,|/–—(]|\s-\s)\s*")
_NAME_AND_REST = re.compile(r"^(?P<name>[^,|–—(]+?)\s*(?:[,|–—(]|\s-\s)\s*(?P<rest>.+)$")
_LEGAL_FORM = re.compile(r"\b(?:AB|HB|KB|Ltd|Limited|LLC|Inc|GmbH|ApS|A/S|ASA|Oy|OÜ|plc)\b")
_TOKEN = re.compile(r"[^\W\d_]+(?:-[^\W\d_]+)*")
_MAX_TITLE_LINE = 80
_LINES_AFTER_NAME = 2

# A run of digits, spaces, hyphens and brackets, judged afterwards (no nested quantifiers).
_PHONE_CANDIDATE = re.compile(r"(?<![\w./+-])(?:\+|00)?[\d(][\d ()\t-]{5,22}\d(?![\w/])")
_SWEDISH_POSTCODE = re.compile(
    r"(?:^|,[ \t]*|\bS(?:E)?-[ \t]?)[1-9]\d{2}[ \t]?\d{2}[ \t]+[A-ZÅÄÖ][a-zåäöé]+", re.MULTILINE)
_STREET = re.compile(
    r"\b[^\W\d_]+(?:gatan|vägen|gata|väg|gränd|torget|allén|backen|stigen|leden|straße|"
    r"strasse|weg|gasse|vej|gade)[ \t]+\d{1,4}[a-zA-Z]?\b"
    r"|\b(?:road|street|avenue|lane|drive|mnt|tee|box)\b", re.IGNORECASE)
_POSTCODE = re.compile(
    r"\b[A-Z]{1,2}\d[A-Z\d]?[ \t]\d[A-Z]{2}\b|\b\d{3}[ \t]?\d{2}[ \t]+[A-ZÅÄÖ]|"
    r"\b\d{4,5}[ \t]+[A-ZÅÄÖ][a-zåäöü]+")


def detect_contact_name_title(mail: ParsedMail, body: BodyParts) -> ItemResult:
    """Present when the sender's own text has a person's name with a job title."""
    sender_name = mail.sender.name if mail.sender else ""
    lines = [line.strip() for line in body.own.split("\n")]
    for index, line in enumerate(lines):
        if len(line) > _MAX_TITLE_LINE:
            continue
        pair = _name_with_title(line, sender_name)
        if pair is None and _is_person(line, sender_name) and not title_in(line):
            following = [other for other in lines[index + 1:] if other][:_LINES_AFTER_NAME]
            for other in following:
                title = title_in(other)
                if title is not None:
                    pair = f"{line}, {title}"
                    break
        if pair is not None:
            return found("contact_name_title", pair)
    return missing("contact_name_title")


def title_in(line: str) -> str | None:
    """The part of `line` that is a job title ("IT-ansvarig", "Head of IT"), or None."""
    if not line or len(line) > _MAX_TITLE_LINE or "@" in line:
        return None
    for piece in _SEGMENTS.split(line):
        segment = piece.strip(" )")
        if not segment or _LEGAL_FORM.search(segment) or any(ch.isdigit() for ch in segment):
            continue
        tokens = [token.lower() for token in _TOKEN.findall(segment)]
        if len(tokens) > 6:
            continue
        if any(token in _TITLE_WORDS or _TITLE_SUFFIX.search(token) for token in tokens):
            return segment
    return None


def _is_person(text: str, sender_name: str) -> bool:
    """A person's name, not a company ("Smakbolaget Sverige AB" looks like a name too)."""
    return looks_like_name(text, sender_name) and not _LEGAL_FORM.search(text)


def _name_with_title(line: str, sender_name: str) -> str | None:
    """"Anna Lind, IT-ansvarig" → the line; None when it is not a name and a title."""
    match = _NAME_AND_REST.match(line)
    if match is None or not _is_person(match.group("name"), sender_name):
        return None
    if " " not in match.group("name").strip():
        return None
    title = title_in(match.group("rest"))
    return f"{match.group('name')}, {title}" if title else None


def detect_contact_details(mail: ParsedMail, body: BodyParts) -> ItemResult:
    """Present when the sender's own text has a telephone number or a postal address."""
    text = body.own
    phone = phone_number(text)
    if phone is not None:
        return found("contact_details", phone)
    address = postal_address(text)
    if address is not None:
        return found("contact_details", address)
    return missing("contact_details")


def phone_number(text: str) -> str | None:
    """The first Swedish or international telephone number in `text`, or None."""
    for match in _PHONE_CANDIDATE.finditer(text):
        candidate = match.group(0).strip()
        if _is_phone(candidate):
            return candidate
    return None


def _is_phone(candidate: str) -> bool:
    if "  " in candidate or "\t" in candidate:
        return False
    digits = re.sub(r"\D", "", candidate)
    if len(set(digits)) < 3:
        return False  # 000000-000000-00, 0707070707: placeholders, not numbers
    if candidate.startswith("+"):
        return digits[0] != "0" and 8 <= len(digits) <= 15
    if digits.startswith("00"):
        return digits[2] != "0" and 8 <= len(digits) - 2 <= 15
    return digits.startswith("0") and 8 <= len(digits) <= 10


def postal_address(text: str) -> str | None:
    """A postal address in `text` (the line that shows it), or None."""
    lines = text.split("\n")
    for index, line in enumerate(lines):
        if _SWEDISH_POSTCODE.search(line):
            return _with_street_before(lines, index)
        if _STREET.search(line):
            nearby = ", ".join(part.strip() for part in lines[index:index + 2] if part.strip())
            if _POSTCODE.search(nearby):
                return nearby
    return None


def _with_street_before(lines: list[str], index: int) -> str:
    line = lines[index].strip()
    if index > 0 and _STREET.search(lines[index - 1]):
        return f"{lines[index - 1].strip()}, {line}"
    return line
