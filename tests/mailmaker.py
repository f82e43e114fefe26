"""Building test messages: a realistic support mail with the parts a test varies."""

from __future__ import annotations

from email.message import EmailMessage
from email.policy import SMTP
from email.utils import make_msgid, parseaddr


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
    authenticated: bool = True,
) -> bytes:
    """A plain-text support message as raw bytes.

    `authenticated`: it came through the organisation's MTA (mx1.example.se in the
    shipped rules), which found a DMARC pass for the From domain and said so in an
    Authentication-Results header above its Received line.
    """
    message = EmailMessage(policy=SMTP)
    if authenticated:
        for name, value in authenticated_headers(sender):
            message[name] = value
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


def authenticated_headers(sender: str, authserv_id: str = "mx1.example.se"
                          ) -> list[tuple[str, str]]:
    """The trusted MTA's Authentication-Results (DMARC pass for `sender`) and Received lines."""
    address = parseaddr(sender)[1].lower()
    domain = address.rpartition("@")[2].encode("idna").decode("ascii")
    return [
        ("Authentication-Results", f"{authserv_id}; dkim=pass header.d={domain} "
         f"header.s=s1; spf=pass smtp.mailfrom={address}; dmarc=pass (p=reject) "
         f"header.from={domain}"),
        ("Received", f"from mail.{domain} (mail.{domain} [192.0.2.25]) by {authserv_id} "
         "(Postfix) with ESMTPS id 4Xk1; Mon, 16 Nov 2026 10:12:03 +0100"),
    ]


def authenticated_message(*, subject: str, message_id: str, text: str,
                          sender: str = "Anna Lind <anna.lind@bergstromsbygg.se>"
                          ) -> EmailMessage:
    """A mail from `sender` vouched for by the trusted MTA, with its text; a test adds parts."""
    message = EmailMessage(policy=SMTP)
    for name, value in authenticated_headers(sender):
        message[name] = value
    message["From"] = sender
    message["To"] = "support@example.se"
    message["Subject"] = subject
    message["Message-ID"] = message_id
    message.set_content(text)
    return message
