"""Split a message body into what the sender wrote now, the signature, and the quoted mail.

`split_body` reads at most `TEXT_LIMIT` characters and returns `BodyParts`:

- **quoted**: everything an earlier message contributed: lines quoted with `>`
  (with the attribution line before them, "On ... wrote:", "Den tis 17 nov. 2026
  kl 10:12 skrev ...:", "Am ... schrieb ...:"), and everything from the first
  reply or forward header on: Outlook's "From:/Från:/Von: ... Sent:/Skickat:/
  Gesendet:" block, "-----Original Message-----", "-----Ursprungligt
  meddelande-----", "---------- Forwarded message ---------", "Begin forwarded
  message:", "Vidarebefordrat meddelande", and an attribution line that no `>`
  lines follow. Text after `>` quotes that is not itself quoted (an interleaved
  or bottom-posted answer) stays the sender's own.
- **signature**: from the sign-off on: "-- ", a closing phrase on its own line
  ("Med vänliga hälsningar", "Mvh", "Hälsningar", "Best regards", "Kind
  regards", "Regards", "Thanks,", "Mvh Sofia"...), "/Anna", a device footer
  ("Skickat från min iPhone", "Sent from my iPhone"), or, when there is none of
  these, a trailing block of short lines that starts with a person's name. A
  "Thanks" right before a long line of prose opens the text, it signs nothing.
- **new**: the rest of the sender's own text, greeting included.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

TEXT_LIMIT = 64 * 1024
_LOOKAHEAD = 6  # lines after a From: line in which a Sent:/Date: line shows a header block

# "-----Original Message-----", "---------- Forwarded message ---------", ...
_SEPARATOR = re.compile(
    r"^-{2,}\s*(?:original\s+message|ursprungligt\s+meddelande|originalmeddelande|"
    r"ursprüngliche\s+nachricht|original-nachricht|forwarded\s+message|"
    r"vidarebefordrat\s+(?:meddelande|brev)|videresendt\s+(?:melding|meddelelse)|"
    r"weitergeleitete\s+nachricht|message\s+d'origine|message\s+transféré)\s*-{2,}\s*$",
    re.IGNORECASE)
# Apple Mail and others announce a forwarded message in a sentence of its own.
_FORWARD_INTRO = re.compile(
    r"^(?:begin\s+forwarded\s+message|start\s+på\s+vidarebefordrat\s+(?:meddelande|brev)|"
    r"början\s+på\s+vidarebefordrat\s+(?:meddelande|brev)|"
    r"vidarebefordrat\s+(?:meddelande|brev)|anfang\s+der\s+weitergeleiteten\s+nachricht|"
    r"forwarded\s+message)\s*:?\s*$", re.IGNORECASE)
_RULE = re.compile(r"^_{10,}\s*$")  # Outlook.com puts a rule above the header block
_HEADER_FROM = re.compile(
    r"^\*?(?:from|från|von|de|fra|van|od|lähettäjä|mittente)\s*:\*?\s*\S", re.IGNORECASE)
_HEADER_SENT = re.compile(
    r"^\*?(?:sent|skickat|gesendet|date|datum|envoyé|sendt|verzonden|lähetetty|inviato|"
    r"enviado|dato|data|skickades)\s*:", re.IGNORECASE)
# The line (or up to three wrapped lines) that introduces a quotation: the verb ends it
# ("On ... X wrote:") or comes before the writer ("Den ... skrev X <x@y>:").
_ATTRIBUTION_VERB = re.compile(
    r"\b(?:wrote|skrev|schrieb|a\s+écrit|kirjoitti|escribió|ha\s+scritto|schreef|napisał|"
    r"написал|написала)\b", re.IGNORECASE)
_ATTRIBUTION_OPENER = re.compile(r"^(?:on|den|am|le|el|il|op|w\s+dniu|\d)\b", re.IGNORECASE)
_ATTRIBUTION_MAX = 400
_ATTRIBUTION_LINES = 3  # an attribution takes three lines at most
_DIGIT_OR_AT = re.compile(r"[\d@]")  # an attribution has a date or an address

_CLOSING_PHRASES = (
    r"med\s+vänlig(?:a)?\s+hälsning(?:ar)?|vänlig(?:a)?\s+hälsning(?:ar)?|"
    r"bästa\s+hälsning(?:ar)?|varma\s+hälsningar|många\s+hälsningar|hälsningar|hälsning|"
    r"hälsn\.?|mvh\.?|m\.v\.h\.?|vh|tack\s+på\s+förhand|tack\s+och\s+hälsningar|"
    r"tack\s+så\s+mycket|stort\s+tack|tack|trevlig\s+helg|"
    r"ha\s+en\s+(?:bra|fin|trevlig)\s+(?:dag|helg|kväll)|"
    r"have\s+a\s+(?:nice|great|good)\s+(?:day|weekend)|"
    r"(?:with\s+)?(?:best|kind|kindest|warm|warmest|many)\s+(?:regards|wishes|thanks)|"
    r"regards|best|cheers|thanks(?:\s+again|\s+in\s+advance|\s+a\s+lot)?|"
    r"thank\s+you(?:\s+in\s+advance)?|many\s+thanks|(?:yours\s+)?sincerely|"
    r"yours\s+(?:faithfully|truly)|br|"
    r"mit\s+freundlichen\s+grüßen|freundliche\s+grüße|viele\s+grüße|liebe\s+grüße|"
    r"(?:med\s+)?venlig(?:\s+hilsen)?|hilsen|ystävällisin\s+terveisin|terveisin|cordialement"
)
# A closing phrase (or two, "Best regards / Mit freundlichen Grüßen") alone on its line,
# optionally followed by the writer's name: "Mvh Sofia", "Thanks, Ahmed".
_CLOSING_LINE = re.compile(
    rf"^(?i:{_CLOSING_PHRASES})(?:\s*[/|]\s*(?i:{_CLOSING_PHRASES}))*[\s,.!]*"
    r"(?:[A-ZÅÄÖÆØÉÜ][^\W\d_]+(?:\s+[A-ZÅÄÖÆØÉÜ][^\W\d_]+){0,2})?\s*$")
_DEVICE_FOOTER = re.compile(
    r"^(?:skickat\s+från\s+min|sent\s+from\s+my|sent\s+from|skickat\s+från|"
    r"get\s+outlook\s+for|hämta\s+outlook\s+för|skickat\s+med|sent\s+with|"
    r"envoyé\s+de\s+mon|von\s+meinem)\b.{0,60}$", re.IGNORECASE)
_SIGNATURE_DELIMITER = re.compile(r"^--\s?$")
_INITIAL_SLASH = re.compile(r"^/\s?[A-ZÅÄÖÆØÉÜ][^\W\d_]*(?:\s+[A-ZÅÄÖÆØÉÜ][^\W\d_]*)?\s*$")
# Two to four capitalised words (a person's name), or one (a first name).
_NAME = re.compile(
    r"^[A-ZÅÄÖÆØÉÜÁÍÓÚČŠŽ][^\W\d_]+(?:[-'’][A-ZÅÄÖÆØÉÜ]?[^\W\d_]+)?"
    r"(?:\s+(?:(?:af|von|van|de|der|den|la|le|di|da)\s+)?"
    r"[A-ZÅÄÖÆØÉÜÁÍÓÚČŠŽ][^\W\d_]+(?:[-'’][A-ZÅÄÖÆØÉÜ]?[^\W\d_]+)?){0,3}$")
_SHORT_LINE = 60
_TRAILING_BLOCK = 8
_SIGNOFF_LOOKAHEAD = 1  # lines after a sign-off that must not be prose
_PROSE_LINE = 90


@dataclass(frozen=True)
class BodyParts:
    """A body in three parts: the sender's new text, the signature, and the quoted mail."""

    new: str
    signature: str
    quoted: str

    @property
    def own(self) -> str:
        """What the sender wrote in this message: the new text and the signature."""
        return f"{self.new}\n{self.signature}" if self.signature else self.new


@lru_cache(maxsize=8)
def split_body(text: str, sender_name: str = "") -> BodyParts:
    """`text` (the first `TEXT_LIMIT` characters) split into new text, signature and quotes.

    `sender_name` (the From display name) helps to find a signature that has no
    sign-off phrase. The last few answers are remembered: the required items, their
    checks and the priority all read the same body of one message.
    """
    lines = _normalise(text[:TEXT_LIMIT]).split("\n")
    attributions: dict[int, int] = {}
    cut = _block_start(lines, attributions)
    own, quoted = _drop_quoted_lines(lines[:cut], attributions)
    quoted.extend(lines[cut:])
    start = _signature_start(own, sender_name)
    return BodyParts(
        new=_join(own[:start]),
        signature=_join(own[start:]),
        quoted=_join(quoted),
    )


def _normalise(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    # Non-breaking and zero-width spaces come from HTML mail and Outlook.
    return (text.replace("\u00a0", " ").replace("\u200b", "").replace("\ufeff", "")
            .replace("\u202f", " "))


def _join(lines: list[str]) -> str:
    return "\n".join(line.rstrip() for line in lines).strip()


def _is_quote(line: str) -> bool:
    return line.lstrip().startswith(">")


def _attribution_at(lines: list[str], index: int) -> int:
    """How many lines (1-3) from `index` form an attribution ("On ... wrote:"), else 0."""
    joined = ""
    for count in range(1, _ATTRIBUTION_LINES + 1):
        if index + count > len(lines):
            return 0
        line = lines[index + count - 1].strip()
        if not line or _is_quote(line):
            return 0
        if count == 1 and not (_DIGIT_OR_AT.search(line) or _ATTRIBUTION_OPENER.match(line)):
            return 0  # an attribution opens with its date, its writer or "On"/"Den"/"Am"
        joined = f"{joined} {line}".strip()
        if len(joined) > _ATTRIBUTION_MAX:
            return 0
        verb = _ATTRIBUTION_VERB.search(joined)
        if verb is None or not _DIGIT_OR_AT.search(joined):
            continue
        if joined.endswith(":") or not joined[verb.end():].strip(" :"):
            return count
    return 0


def _is_attribution_block(lines: list[str], index: int, count: int) -> bool:
    """An attribution that no `>` lines follow still starts the quote when it reads like one."""
    joined = " ".join(line.strip() for line in lines[index:index + count])
    return "@" in joined or _ATTRIBUTION_OPENER.match(joined) is not None


def _next_content(lines: list[str], index: int) -> str:
    for line in lines[index:]:
        if line.strip():
            return line
    return ""


def _block_start(lines: list[str], attributions: dict[int, int]) -> int:
    """The index where an earlier message (reply or forward header) starts, else len(lines).

    The attributions it looks for are kept in `attributions`, by index.
    """
    for index, raw in enumerate(lines):
        line = raw.strip()
        if not line or _is_quote(raw):
            continue
        if _SEPARATOR.match(line) or _FORWARD_INTRO.match(line):
            return index
        if _RULE.match(line) and _HEADER_FROM.match(_next_content(lines, index + 1).strip()):
            return index
        if _HEADER_FROM.match(line) and any(
                _HEADER_SENT.match(following.strip())
                for following in lines[index + 1:index + 1 + _LOOKAHEAD]):
            return index
        count = attributions[index] = _attribution_at(lines, index)
        if count and not _is_quote(_next_content(lines, index + count)) and (
                _is_attribution_block(lines, index, count)):
            return index
    return len(lines)


def _drop_quoted_lines(lines: list[str], attributions: dict[int, int]) -> tuple[
        list[str], list[str]]:
    """The sender's own lines and the `>` quoted ones (with their attribution lines).

    `attributions` holds what `_attribution_at` found at some indexes of a list that
    begins with `lines`: the same answer where the attribution's three lines at most
    lie within `lines`.
    """
    quoted_at = [_is_quote(line) for line in lines]
    whole = len(lines) - _ATTRIBUTION_LINES
    for index in range(len(lines)):
        known = attributions.get(index) if index <= whole else None
        count = _attribution_at(lines, index) if known is None else known
        if count and _is_quote(_next_content(lines, index + count)):
            for offset in range(count):
                quoted_at[index + offset] = True
    own = [line for line, quoted in zip(lines, quoted_at, strict=True) if not quoted]
    quoted = [line for line, is_quoted in zip(lines, quoted_at, strict=True) if is_quoted]
    return own, quoted


def looks_like_name(line: str, sender_name: str = "") -> bool:
    """Whether `line` is a person's name alone: "Anna Lind", "Åsa Lundqvist", the sender's."""
    line = line.strip()
    if not line or len(line) > 50:
        return False
    if sender_name and line.casefold() == sender_name.strip().casefold():
        return True
    return _NAME.match(line) is not None and not _CLOSING_LINE.match(line)


def _signature_start(lines: list[str], sender_name: str) -> int:
    """The index of the first signature line in the sender's own `lines` (len when none)."""
    content = [index for index, line in enumerate(lines) if line.strip()]
    if not content:
        return len(lines)
    first = content[0]
    for index in content:
        line = lines[index].strip()
        if _SIGNATURE_DELIMITER.match(lines[index]) or _DEVICE_FOOTER.match(line):
            return index
        if index > first and len(line) <= _SHORT_LINE and (
                _CLOSING_LINE.match(line) or _INITIAL_SLASH.match(line)) and (
                not _prose_follows(lines, content, index)):
            return index
    return _trailing_name_block(lines, content, sender_name)


def _prose_follows(lines: list[str], content: list[int], index: int) -> bool:
    """Whether a long line comes right after `index`: that "Thanks" opened the text."""
    following = [lines[other].strip() for other in content if other > index][:_SIGNOFF_LOOKAHEAD]
    return any(len(line) > _PROSE_LINE for line in following)


def _trailing_name_block(lines: list[str], content: list[int], sender_name: str) -> int:
    """A signature without a sign-off: short last lines from a name on ("Johan Bergström")."""
    block: list[int] = []
    for index in reversed(content[1:]):
        line = lines[index].strip()
        if len(line) > _SHORT_LINE or line.endswith((".", "?", "!")) or len(block) >= (
                _TRAILING_BLOCK):
            break
        block.append(index)
    first_name = sender_name.split(maxsplit=1)[0].casefold() if sender_name.strip() else ""
    for index in reversed(block):  # top of the block first
        line = lines[index].strip()
        single = " " not in line
        if single and not (index == content[-1] or line.casefold() == first_name):
            continue
        if looks_like_name(line, sender_name):
            return index
    return len(lines)
