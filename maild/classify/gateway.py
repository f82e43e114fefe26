"""Delivery failures and delay warnings without a report: gateways, older servers, hosted services.

Antivirus gateways, older Exchange and GroupWise servers and hosted SMTP
services write their failure notices as plain text, with no
`multipart/report` and no `Auto-Submitted`, in the language of the server,
and sometimes from an ordinary-looking address (GroupWise sends as the
recipient). No single clue is enough, because people write about delivery
problems too; `gateway_bounce_signal` decides on two clues together:

- the message *opens* with a failure sentence (a mail system states the
  failure first; a person greets), with a bounce subject or the headers of a
  returned message in the body;
- a mail-system role sender (postmaster or MAILER-DAEMON in any spelling,
  Exchange's system mailbox, a virus scanner or mail gateway, a "system
  administrator" name) with a bounce subject, a failure sentence or returned
  headers.

A forwarded message (Fwd:, VB:, WG: ...) is a person asking about it.
"""

from __future__ import annotations

import re

from maild.classify.evidence import is_forward, leading_text, localpart
from maild.parse import ParsedMail

# How far into the text a mail system has explained the failure.
_EXPLANATION_LIMIT = 8 * 1024
_OPENING_LIMIT = 400
_APOSTROPHE = r"['’]"

# Failure and delay sentences of mail systems, in English, Swedish, German, French.
_FAILURE_SENTENCE = (
    # English
    r"(your|the|this)\s+(message|mail|e-?mail)\b.{0,240}?\b(could\s+not|couldn"
    rf"{_APOSTROPHE}t|cannot|can{_APOSTROPHE}t|was\s+not|wasn{_APOSTROPHE}t|has\s+not\s+been|"
    r"could\s+not\s+be)\s+(be\s+)?(delivered|forwarded|sent|relayed)|"
    r"(the\s+)?(message|mail)\s+(that\s+)?you\s+sent\s+was\s+(undeliverable|not\s+delivered|"
    r"rejected|blocked)|"
    r"(we\s+were\s+|i\s+was\s+|i\s+am\s+)?unable\s+to\s+deliver\s+(your|the)\s+(message|mail)|"
    r"delivery\s+(of|to)\s+.{0,240}?\b(has\s+been|was|is)\s+(postponed|delayed|deferred)|"
    r"(message\s+)?delivery\s+(has\s+been|is)\s+(delayed|postponed)|"
    r"failed\s+recipients|your\s+message\s+did\s+not\s+reach|"
    # Swedish
    r"(ditt|det\s+h[äa]r|meddelandet|ditt\s+e-?postmeddelande)\b.{0,120}?\b(n[åa]dde\s+inte|"
    r"kunde\s+inte\s+(levereras|skickas|vidarebefordras)|har\s+inte\s+levererats)|"
    r"leveransen\s+(har\s+f[öo]rdr[öo]jts|misslyckades|har\s+misslyckats)|"
    r"f[öo]ljande\s+mottagare\s+kunde\s+inte\s+n[åa]s|"
    # German
    r"ihre\s+nachricht\b.{0,120}?\b(hat\s+einige\s+oder\s+alle\s+empf[äa]nger\s+nicht\s+erreicht|"
    r"konnte\b.{0,40}?\bnicht\s+zugestellt\s+werden|wurde\s+nicht\s+zugestellt|"
    r"ist\s+unzustellbar)|"
    r"die\s+nachricht\s+(konnte\s+nicht\s+zugestellt\s+werden|hat\s+folgende)|"
    r"dies\s+ist\s+eine\s+automatisch\s+(erzeugte|generierte)\s+(warnung|nachricht|"
    r"benachrichtigung)|"
    # French
    rf"votre\s+message\b.{{0,120}}?\bn{_APOSTROPHE}a\s+pas\s+(pu\s+)?([êe]tre\s+)?"
    r"(remis|d[ée]livr[ée]|distribu[ée]|achemin[ée])|"
    r"impossible\s+de\s+(remettre|d[ée]livrer|joindre\s+le)|"
    r"ceci\s+est\s+un\s+message\s+(automatique|g[ée]n[ée]r[ée]\s+automatiquement)"
)
_FAILURE = re.compile(_FAILURE_SENTENCE, re.IGNORECASE | re.DOTALL)
# What a notice puts before its first sentence: rules of stars or dashes, blank lines.
_DECORATION = " \t\r\n-*=_#~"

# Subjects mail systems give their notices, with what people write after forwarding them.
_NOTICE_SUBJECT = re.compile(
    r"undeliver(able|ed)|non[- ]?deliver|not\s+delivered|could\s+not\s+be\s+delivered|"
    r"delivery\s+(status\s+notification|notification|failure|failed|has\s+failed|problem|"
    r"report|warning|delayed|delay)|returned\s+mail|^\s*returned\s*$|"
    r"mail\s+delivery\s+(failed|failure|system|error|warning)|failure\s+notice|"
    r"delayed\s+mail|warning:\s+could\s+not\s+send|message\s+(was\s+)?blocked|"
    r"virus\s+(alert|warning|found|detected)|"
    r"olevererbar[t]?|kunde\s+inte\s+levereras|f[öo]rdr[öo]jd\s+leverans|levereringsfel|"
    r"leveransfel|unzustellbar|nicht\s+zugestellt|zustellung\s+verz[öo]gert|virenwarnung|"
    r"non\s+remis|[ée]chec\s+de\s+(la\s+)?remise|remise\s+diff[ée]r[ée]e|"
    r"notification\s+d.[ée]tat\s+de\s+(la\s+)?remise",
    re.IGNORECASE,
)
# Headers of the returned message, quoted in the body as a mail system does.
_RETURNED_HEADER = re.compile(
    r"^(received|return-path|message-id|from|to|subject|date|x-mailer|mime-version):[ \t]",
    re.IGNORECASE | re.MULTILINE,
)
_DAEMON_ROLE = re.compile(r"^(mailer|mail|smtp)?-?daemon|^post-?master|^mailer$", re.IGNORECASE)
_EXCHANGE_SYSTEM = re.compile(r"^microsoftexchange[0-9a-f]{32}$", re.IGNORECASE)
_GATEWAY_ROLE = re.compile(
    r"anti-?virus|virus|viren|scanner|mailsweeper|mail-?gateway|gateway|firewall|spam-?filter|"
    r"e-?postskydd|mail-?service|smtp",
    re.IGNORECASE,
)
_ROLE_NAME = re.compile(
    r"^\s*(system\s*administrat(or|ör)|systemadministrat(or|ör)|administrateur\s+syst[eè]me|"
    r"syst[eè]me\s+de\s+messagerie|microsoft\s+outlook|postmaster|mailer[- ]daemon|"
    r"mail\s+(delivery\s+)?(sub)?system|e-?postsystemet|e-?postskydd|virus\s*scanner|"
    r"virenschutz|anti-?virus|mail\s*scanner|mail\s*gateway)\b",
    re.IGNORECASE,
)


def gateway_bounce_signal(mail: ParsedMail, _envelope_sender: str | None = None) -> str | None:
    """Two clues that `mail` is a mail system's failure or delay notice, named; else None."""
    if is_forward(mail.subject):
        return None
    text = leading_text(mail, _EXPLANATION_LIMIT)
    opening = _FAILURE.match(text[:_OPENING_LIMIT].lstrip(_DECORATION))
    role = role_sender(mail)
    if opening is None and role is None:
        return None  # a person's: neither its subject nor its body can make it a notice
    subject = _NOTICE_SUBJECT.search(mail.subject)
    returned = _returned_headers(text)
    if opening is not None and (subject is not None or returned):
        also = f"subject {mail.subject[:60]!r}" if subject else "the returned message's headers"
        return f"opens with a delivery-failure sentence {_quote(opening)} and has {also}"
    if role is None:
        return None
    if subject is not None:
        return f"notice subject {mail.subject[:60]!r} from {role}"
    failure = _FAILURE.search(text)
    if failure is not None:
        return f"delivery-failure sentence {_quote(failure)} from {role}"
    if returned:
        return f"returned message's headers in the body from {role}"
    return None


def role_sender(mail: ParsedMail) -> str | None:
    """Why the From looks like a mail system's role account or gateway, or None."""
    if mail.sender is None:
        return "a message without a readable sender"
    name = mail.sender.name
    if _ROLE_NAME.match(name):
        return f"sender name {name[:40]!r}"
    local = _plain_localpart(mail.sender.address)
    if _DAEMON_ROLE.match(local) or _EXCHANGE_SYSTEM.match(local):
        return f"mail-system sender {mail.sender.address[:80]}"
    if _GATEWAY_ROLE.search(local):
        return f"gateway sender {mail.sender.address[:80]}"
    return None


def _plain_localpart(address: str) -> str:
    """The local part without +tag, source route (`%host`, `\\@host`) or separators."""
    local = localpart(address)
    local = re.split(r"[+%=]|\\@", local, maxsplit=1)[0]
    return re.sub(r"[_.]", "", local)


def _returned_headers(text: str) -> bool:
    """Whether `text` quotes a message's header block (Received or Message-ID among 3 names)."""
    names = {match.group(1).lower() for match in _RETURNED_HEADER.finditer(text)}
    return len(names) >= 3 and bool(names & {"received", "message-id", "return-path"})


def _quote(match: re.Match[str]) -> str:
    return repr(" ".join(match.group(0).split())[:60])
