"""`company`: the sender names the customer company, in the text or the signature.

Definition: the sender's own text (new text and signature; quoted and
forwarded mail are not read) contains either

1. a company name with its legal form: capitalised words followed by AB,
   "AB (publ)", HB, KB, Aktiebolag, Ltd, Limited, LLC, Inc, Corp, GmbH, ApS,
   A/S, ASA, Oy, Oyj, OÜ, plc, or AS, AG, SA, BV, NV after a word in mixed case
   (so "AS SOON AS" is no company), or a municipality ("Skellefteå kommun"):
   "Bergströms Bygg AB", "Fjällbygg i Åre AB", "Nordic Parcel Ltd"; or
2. the name of the sender's own company domain written as one to three
   capitalised words ("Bergströms Bygg" for bergstromsbygg.se, "Smakbolaget's"
   for smakbolaget.se), outside web and mail addresses. Free-mail domains
   (gmail.com, telia.com ...) name no company.
"""

from __future__ import annotations

import re
import unicodedata

from maild.checks.quoting import BodyParts
from maild.checks.result import ItemResult, found, missing
from maild.classify.sender import address_domain, registrable_domain, shipped_private_domains
from maild.parse import ParsedMail

ITEM = "company"
_MIN_LABEL = 4
_MAX_WORDS = 3

_WORD = r"[A-ZÅÄÖÆØÜÉ0-9][\w&.'’-]*"
_CONNECTOR = r"(?:&|i|och|and|of|the|de|du|la|von|van|der)"
_LEGAL_FORM = re.compile(
    rf"(?<![\w&.'’-])(?P<name>{_WORD}(?:[ \t]+(?:{_WORD}|{_CONNECTOR})){{0,5}}?)(?:[ \t]*,)?[ \t]+"
    r"(?P<form>AB(?:[ \t]+\(publ\))?|HB|KB|Aktiebolag|Handelsbolag|Ltd\.?|Limited|LLC|"
    r"Inc\.?|Corp\.?|Corporation|GmbH|ApS|A/S|ASA|Oyj?|OÜ|plc|PLC|kommun|"
    r"(?P<ambiguous>AS|AG|SA|BV|B\.V\.|NV))(?![\w/])")
_LEADING_NOISE = frozenset({
    "vi", "jag", "ni", "hos", "från", "hej", "hi", "hello", "dear", "we", "our", "at", "med",
    "and", "och", "the", "i", "på", "för", "till", "to", "for", "with", "from"})
_ADDRESS_LIKE = re.compile(
    r"(?<!\S)[^\s@]*@\S*|(?<!\S)(?:https?://|www\.)\S*|(?<![\w.-])[\w-]+(?:\.[\w-]+)*\.[a-z]{2,}\b")
_CAPITALISED = re.compile(r"\b[A-ZÅÄÖÆØÜÉ][^\W\d_]*(?:['’]s)?")
_POSSESSIVE = re.compile(r"['’]s$")


def detect_company(mail: ParsedMail, body: BodyParts) -> ItemResult:
    """Present when the sender's own text names a company (legal form or own domain name)."""
    text = body.own
    named = company_with_legal_form(text)
    if named is not None:
        return found(ITEM, named)
    label = _company_label(mail)
    if label:
        words = _domain_words(text, label)
        if words is not None:
            return found(ITEM, words)
    return missing(ITEM)


def company_with_legal_form(text: str) -> str | None:
    """The first "Name AB/Ltd/..." in `text`, without leading words such as "Vi på"."""
    for match in _LEGAL_FORM.finditer(text):
        tokens = match.group("name").split()
        while tokens and tokens[0].lower() in _LEADING_NOISE:
            tokens.pop(0)
        if not tokens or not tokens[0][0].isupper():
            continue
        if match.group("ambiguous") and not any(ch.islower() for ch in tokens[-1]):
            continue
        return f"{' '.join(tokens)} {match.group('form')}"
    return None


def _fold(text: str) -> str:
    """`text` in lower case without diacritics, spaces and marks: "Bergströms" → "bergstroms"."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(ch for ch in decomposed if ch.isalnum() and not unicodedata.combining(ch))


def _company_label(mail: ParsedMail) -> str:
    """The folded first label of the sender's registrable domain, unless it is free mail."""
    if mail.sender is None:
        return ""
    domain = registrable_domain(address_domain(mail.sender.address))
    if not domain or "." not in domain or domain in shipped_private_domains():
        return ""
    label = _fold(domain.split(".", 1)[0])
    return label if len(label) >= _MIN_LABEL else ""


def _domain_words(text: str, label: str) -> str | None:
    """One to three adjacent capitalised words of `text` that spell `label`, or None."""
    for line in _ADDRESS_LIKE.sub(" ", text).split("\n"):
        words = list(_CAPITALISED.finditer(line))
        for start in range(len(words)):
            joined = ""
            for end in range(start, min(start + _MAX_WORDS, len(words))):
                if end > start and line[words[end - 1].end():words[end].start()].strip():
                    break
                joined += _fold(_POSSESSIVE.sub("", words[end].group(0)))
                if joined == label:
                    return line[words[start].start():words[end].end()]
                if not label.startswith(joined):
                    break
    return None
