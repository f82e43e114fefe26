"""Bounces: delivery reports, standard (RFC 3464) or in the own format of a mail system.

`bounce_signal` names the evidence that a message reports on the delivery of
another one, or returns None. Strong evidence (a delivery report, a header
only mail systems write, a mail-system sender such as MAILER-DAEMON) decides
alone; a bounce-like subject or failure wording counts only when the sender is
a mail system too, because people write "delivery failure" in their own
subjects. A local part such as `nobody` or `bounce` is no such evidence on its
own: web servers send people's form mail as nobody@, and mailing systems use
bounce@ as the envelope sender of ordinary mail.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from maild.classify.evidence import (
    is_reply_or_forward,
    leading_text,
    localpart,
    report_type,
    sender_address,
)
from maild.parse import ParsedMail

# The accounts mail systems send their reports from. Compared without "-", "_" and ".",
# so MAILER-DAEMON, mailer_daemon and post_master match.
_DAEMON_LOCALPARTS = frozenset({
    "mailerdaemon", "maildaemon", "postmaster", "mdaemon", "noreplydmarcsupport",
})
_DAEMON_PUNCTUATION = str.maketrans("", "", "-_.")
# Senders no person answers from; not enough alone: web forms send as no-reply or, from a
# web server, as nobody@; newsletters and ticket systems use bounce@ as the envelope sender.
_UNATTENDED_LOCALPART = re.compile(
    r"^(no[-_.]?reply|do[-_.]?not[-_.]?reply|donotreply|noresponse|no[-_.]?response|"
    r"mailer|mail[-_.]?delivery|smtp|mta|daemon|notify|notification|bounce|nobody)s?"
    r"([-_.+].*)?$",
)
_DAEMON_NAME = re.compile(
    r"^\s*(mail delivery (sub)?system|mail ?administrator|mailer[- ]daemon|postmaster|"
    r"mail system|e-?mail delivery|delivery status notification)\b",
    re.IGNORECASE,
)
_DELIVERY_STATUS_PARTS = frozenset({
    "message/delivery-status", "message/global-delivery-status",
    "message/global-delivery-status+xml",
})
_VENDOR_HEADERS = (
    ("X-Failed-Recipients", "Exim/Gmail bounce: X-Failed-Recipients header"),
    ("X-MS-Exchange-Message-Is-Ndr", "Exchange/Office 365 non-delivery report: "
                                     "X-MS-Exchange-Message-Is-Ndr header"),
)
_LIST_MANAGER_HEADERS = ("X-MLServer", "X-ML-Server", "X-Mailman-Version", "X-Listserver",
                         "X-Ecartis-Version")
_LIST_ADMIN = re.compile(r"^owner-|-(admin|owner|bounces?|request)$")
# The opening sentences of the bounce texts of common mail systems, as they write them.
_MTA_OPENINGS = (
    ("qmail", r"hi\.\s+this\s+is\s+the\s+qmail-send\s+program"),
    ("Postfix", r"this\s+is\s+the\s+(mail\s+system|postfix\s+program)\s+at\s+host"),
    ("Exim", r"this\s+message\s+was\s+created\s+automatically\s+by\s+(mail\s+delivery\s+"
             r"software|the\s+smtp\s+relay)"),
    ("Exim", r"a\s+message\s+that\s+you\s+sent\s+could\s+not\s+be\s+delivered\s+to\s+"
             r"(one\s+or\s+more|all)\s+of\s+its\s+recipients"),
    ("Sendmail", r"the\s+original\s+message\s+was\s+received\s+at\s+(mon|tue|wed|thu|fri|sat|"
                 r"sun|\d)"),
    ("Sendmail", r"-+\s*(transcript\s+of\s+session\s+follows|the\s+following\s+addresses\s+"
                 r"had\s+(permanent\s+fatal|transient\s+non-fatal)\s+errors)\s*-+"),
    ("Exchange", r"delivery\s+has\s+failed\s+to\s+these\s+recipients\s+or\s+(groups|"
                 r"distribution\s+lists)"),
    ("Exchange", r"your\s+message\s+did\s+not\s+reach\s+some\s+or\s+all\s+of\s+the\s+intended\s+"
                 r"recipients"),
    ("Gmail", r"delivery\s+to\s+the\s+following\s+recipients?\s+failed\s+permanently"),
    ("Gmail", r"\*\*\s*(address\s+not\s+found|message\s+not\s+delivered|message\s+blocked)\s*\*\*"),
    ("OpenSMTPD", r"this\s+is\s+the\s+mailer-daemon,\s+please\s+do\s+not\s+reply"),
    ("DragonFly Mail Agent", r"this\s+is\s+the\s+dragonfly\s+mail\s+agent\s"),
    ("a mail server", r"this\s+is\s+(an\s+automatically\s+generated\s+|a\s+)delivery\s+status\s+"
                      r"notification"),
)
_MTA_OPENING = re.compile(
    "|".join(f"(?P<m{index}>{pattern})" for index, (_, pattern) in enumerate(_MTA_OPENINGS)),
    re.IGNORECASE,
)
_BOUNCE_SUBJECT = re.compile(
    r"undeliver(able|ed)|non[- ]?deliver|not\s+delivered|delivery\s+(status\s+notification|"
    r"notification|failure|failed|has\s+failed|problem|report)|returned\s+mail|"
    r"mail\s+delivery\s+(failed|failure|system|error)|failure\s+notice|delayed\s+mail|"
    r"could\s+not\s+send\s+message|mail\s+system\s+error|rejected\s+mail|"
    r"unzustellbar|nicht\s+zustellbar|olevererbar|kunde\s+inte\s+levereras|levereringsfel|"
    r"ikke\s+levert|kan\s+ikke\s+leveres|ei\s+toimitettu|non\s+remis|onbestelbaar|"
    r"non\s+recapitabile|no\s+se\s+puede\s+entregar",
    re.IGNORECASE,
)
_FAILURE_WORDING = re.compile(
    r"(could\s+not|couldn't|cannot|can't|was\s+not|wasn't|has\s+not\s+been)\s+(be\s+)?"
    r"(delivered|sent)|undeliverable|delivery\s+(to\s+the\s+following\s+.{0,40})?(has\s+)?"
    r"failed|(unable\s+to|trouble)\s+deliver(ing)?\s+(your\s+)?(message|mail)|"
    r"had\s+delivery\s+problems|"
    r"failed\s+permanently|permanent\s+(fatal\s+)?error|(user|recipient|address)\s+unknown|"
    r"unknown\s+(user|recipient)|no\s+such\s+(user|recipient|address|mailbox)|"
    r"mailbox\s+(is\s+)?(full|unavailable|not\s+found)|recipient\s+address\s+rejected",
    re.IGNORECASE,
)
# Mail systems explain the failure first, before any copy of the returned message.
_EXPLANATION_LIMIT = 8 * 1024
_SES_NOTIFICATION = re.compile(r'"(notificationType|eventType)"\s*:\s*"([A-Za-z ]{1,40})"')

_Check = Callable[[ParsedMail, str | None], str | None]


def is_daemon_address(address: str) -> bool:
    """Whether `address` is a mail system's own account (MAILER-DAEMON, postmaster, ...)."""
    local = localpart(address).translate(_DAEMON_PUNCTUATION)
    return bool(local) and local in _DAEMON_LOCALPARTS


def bounce_signal(mail: ParsedMail, envelope_sender: str | None) -> str | None:
    """The evidence that `mail` is a bounce (a delivery report), or None."""
    for check in _CHECKS:
        signal = check(mail, envelope_sender)
        if signal is not None:
            return signal
    return None


def null_sender_signal(envelope_sender: str | None) -> str | None:
    """The null envelope sender `<>`, which only bounces and auto-replies use (RFC 5321, 3834)."""
    if envelope_sender == "":
        return "null envelope sender <> (used by mail systems for bounces)"
    return None


def _delivery_report(mail: ParsedMail, _envelope_sender: str | None) -> str | None:
    kind = report_type(mail)
    if kind is None or kind == "feedback-report":
        return None
    if kind == "disposition-notification":
        return "read receipt: multipart/report; report-type=disposition-notification (RFC 8098)"
    return f"delivery report: multipart/report; report-type={kind or 'missing'} (RFC 3464)"


def _delivery_status_part(mail: ParsedMail, _envelope_sender: str | None) -> str | None:
    for content_type in (*mail.part_types, *(a.content_type for a in mail.attachments)):
        if content_type in _DELIVERY_STATUS_PARTS:
            return f"delivery report: a {content_type} part"
    return None


def _vendor_header(mail: ParsedMail, _envelope_sender: str | None) -> str | None:
    for name, signal in _VENDOR_HEADERS:
        if mail.header(name) is not None:
            return signal
    return None


def _ses_notification(mail: ParsedMail, _envelope_sender: str | None) -> str | None:
    # Amazon SES reports bounces, complaints and deliveries as JSON sent by Amazon SNS.
    if mail.header("x-amz-sns-message-id") is None:
        return None
    head = mail.text[:2000].lstrip()
    match = _SES_NOTIFICATION.search(head) if head.startswith("{") else None
    if match is None:
        return None
    return f"Amazon SES {match.group(2)} notification (JSON sent by Amazon SNS)"


def _daemon_sender(mail: ParsedMail, envelope_sender: str | None) -> str | None:
    sender = sender_address(mail)
    if sender and is_daemon_address(sender):
        return f"sender {sender} is a mail-system account"
    if envelope_sender and is_daemon_address(envelope_sender):
        return f"envelope sender {envelope_sender} is a mail-system account"
    return None


def _list_manager_notice(mail: ParsedMail, _envelope_sender: str | None) -> str | None:
    sender = sender_address(mail)
    if not sender or not _LIST_ADMIN.search(localpart(sender)):
        return None
    for name in _LIST_MANAGER_HEADERS:
        if mail.header(name) is not None:
            return f"notice from a mailing-list manager ({name}) at its admin address {sender}"
    return None


def _mta_opening(mail: ParsedMail, _envelope_sender: str | None) -> str | None:
    # A person who pastes a bounce writes something first or forwards it (Fwd:);
    # a mail system starts the message with its own sentence.
    if is_reply_or_forward(mail.subject):
        return None
    match = _MTA_OPENING.match(mail.text[:2000].lstrip())
    if match is None:
        return None
    return f"bounce text of {_system_of(match)} opens the message: {match.group(0)[:60]!r}"


def _system_of(match: re.Match[str]) -> str:
    """The mail system whose bounce sentence `match` (of `_MTA_OPENING`) found."""
    for name, value in match.groupdict().items():
        if value is not None:
            return _MTA_OPENINGS[int(name[1:])][0]
    return "a mail server"


def _failure_from_mail_system(mail: ParsedMail, envelope_sender: str | None) -> str | None:
    who = _unattended_sender(mail, envelope_sender)
    if who is None:
        return None
    if _BOUNCE_SUBJECT.search(mail.subject):
        return f"bounce subject {mail.subject[:80]!r} from {who}"
    text = leading_text(mail, _EXPLANATION_LIMIT)
    match = _MTA_OPENING.search(text) or _FAILURE_WORDING.search(text)
    if match is not None:
        return f"delivery-failure text {match.group(0)[:60]!r} from {who}"
    return None


def _unattended_sender(mail: ParsedMail, envelope_sender: str | None) -> str | None:
    """Why the sender looks like a mail system rather than a person, or None."""
    if envelope_sender == "":
        return "the null envelope sender <>"
    if mail.sender is None:
        return "a message without a sender"
    if _DAEMON_NAME.match(mail.sender.name):
        return f"sender name {mail.sender.name!r}"
    sender = sender_address(mail)
    if not _UNATTENDED_LOCALPART.match(localpart(sender)):
        return None
    # A web form sends as no-reply on behalf of the person named in Reply-To.
    if any(not _UNATTENDED_LOCALPART.match(localpart(reply.address))
           and not is_daemon_address(reply.address) for reply in mail.reply_to):
        return None
    return f"unattended sender {sender}"


_CHECKS: tuple[_Check, ...] = (
    _delivery_report, _delivery_status_part, _vendor_header, _ses_notification,
    _daemon_sender, _list_manager_notice, _mta_opening, _failure_from_mail_system,
)
