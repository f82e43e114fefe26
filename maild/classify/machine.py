"""Machine-generated mail: bounces, complaints, auto-replies, list traffic, maild's own mail.

`classify_machine` returns the kind and the signal that decided it, or None
for mail a person wrote. Answering any of these kinds starts mail loops, so
maild never acknowledges them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from maild.parse import ParsedMail

LOOP_HEADER = "X-Maild-Loop"

_DAEMON_LOCALPARTS = frozenset({
    "mailer-daemon", "postmaster", "mail-daemon", "maildaemon", "mailerdaemon",
    "noreply-dmarc-support", "bounce", "bounces", "nobody",
})
_AUTOREPLY_SUBJECT = re.compile(
    r"^\s*(automatiskt svar|autosvar|fr[aå]nvaro(meddelande)?|out of (the )?office|"
    r"automatic reply|auto[- ]?reply|autoreply|auto[- ]?response|abwesenheitsnotiz|"
    r"automatische antwort|r[ée]ponse automatique|vacation reply|on vacation)\b",
    re.IGNORECASE,
)
_BOUNCE_SUBJECT = re.compile(
    r"(undeliver(able|ed)|delivery (status notification|failure|has failed)|"
    r"returned mail|mail delivery (failed|failure|system)|non[- ]?delivery|failure notice|"
    r"kunde inte levereras|olevererbar|levereringsfel)",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class MachineVerdict:
    """The kind of machine mail and the signal (header or rule) that showed it."""

    kind: str      # "bounce", "complaint", "autoreply", "list" or "loop"
    signal: str


def _localpart(address: str) -> str:
    return address.rpartition("@")[0].lower()


def _report_type(mail: ParsedMail) -> str | None:
    content_type = mail.header("Content-Type") or ""
    if mail.content_type != "multipart/report":
        return None
    match = re.search(r"report-type\s*=\s*\"?([\w-]+)", content_type, re.IGNORECASE)
    return match.group(1).lower() if match else ""


def classify_machine(
    mail: ParsedMail,
    envelope_sender: str | None,
    own_domains: frozenset[str] = frozenset(),
    own_addresses: frozenset[str] = frozenset(),
) -> MachineVerdict | None:
    """The machine kind of `mail` with its deciding signal, or None when a person wrote it.

    `envelope_sender` is "" for the null sender `<>` and None when unknown.
    """
    loop = mail.header(LOOP_HEADER)
    if loop is not None:
        return MachineVerdict("loop", f"{LOOP_HEADER} header present ({loop[:80]})")
    sender = mail.sender.address.lower() if mail.sender else ""
    if sender and sender in own_addresses:
        return MachineVerdict("loop", f"sender {sender} is one of maild's own addresses")
    if mail.message_id and "@" in mail.message_id:
        id_domain = mail.message_id.rpartition("@")[2].lower()
        if id_domain in own_domains and mail.message_id.startswith("maild."):
            return MachineVerdict("loop", f"Message-ID {mail.message_id} is maild's own")

    report = _report_type(mail)
    if report == "feedback-report":
        return MachineVerdict("complaint", "multipart/report; report-type=feedback-report (ARF)")
    if report is not None and report in ("delivery-status", "disposition-notification", ""):
        return MachineVerdict("bounce", f"multipart/report; report-type={report or 'unknown'}")
    if envelope_sender == "":
        return MachineVerdict("bounce", "null envelope sender <>")
    if sender and _localpart(sender) in _DAEMON_LOCALPARTS:
        return MachineVerdict("bounce", f"sender {sender} is a mail system account")
    if envelope_sender and _localpart(envelope_sender) in _DAEMON_LOCALPARTS:
        return MachineVerdict("bounce", f"envelope sender {envelope_sender} is a mail system "
                              "account")

    auto_submitted = (mail.header("Auto-Submitted") or "").strip().lower()
    if auto_submitted and not auto_submitted.startswith("no"):
        return MachineVerdict("autoreply", f"Auto-Submitted: {auto_submitted}")
    for header in ("X-Autoreply", "X-Autorespond", "X-Autoresponder"):
        if mail.header(header) is not None:
            return MachineVerdict("autoreply", f"{header} header present")
    precedence = (mail.header("Precedence") or "").strip().lower()
    if precedence in ("bulk", "junk", "list", "auto_reply"):
        kind = "list" if precedence in ("bulk", "list") else "autoreply"
        return MachineVerdict(kind, f"Precedence: {precedence}")
    if mail.header("List-Id") is not None:
        return MachineVerdict("list", "List-Id header present")
    if mail.header("List-Unsubscribe") is not None:
        return MachineVerdict("list", "List-Unsubscribe header present")
    if _AUTOREPLY_SUBJECT.search(mail.subject):
        return MachineVerdict("autoreply", f"auto-reply subject: {mail.subject[:80]}")
    if _BOUNCE_SUBJECT.search(mail.subject) and not mail.sender:
        return MachineVerdict("bounce", f"bounce subject without sender: {mail.subject[:80]}")
    return None
