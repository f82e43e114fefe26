"""Building test messages: a realistic support mail with the parts a test varies."""

from __future__ import annotations

from email.message import EmailMessage
from email.policy import SMTP
from email.utils import make_msgid


def support_mail(
    *,
    sender: str = "Anna Lind <anna.lind@bergstromsbygg.se>",
    to: str = "support@example.se",
    subject: str = "Bokningssidan visar fel pris",
    body: str = ("Hej!\n\nNär vi bokar ett rum på webbplatsen visas fel pris i kassan sedan "
                 "i morse. Kan ni titta på det?\n\nMed vänliga hälsningar\nAnna Lind\n"),
    message_id: str | None = None,
    headers: dict[str, str] | None = None,
    in_reply_to: str | None = None,
    references: str | None = None,
) -> bytes:
    """A plain-text support message as raw bytes."""
    message = EmailMessage(policy=SMTP)
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = "Mon, 16 Nov 2026 10:12:00 +0100"
    message["Message-ID"] = message_id or make_msgid(domain="mail.test")
    if in_reply_to:
        message["In-Reply-To"] = in_reply_to
    if references:
        message["References"] = references
    for name, value in (headers or {}).items():
        message[name] = value
    message.set_content(body)
    return message.as_bytes()
