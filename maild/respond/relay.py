"""The SMTP relay transport: hands composed messages to the configured relay.

A 4xx reply or a connection problem is a temporary failure (the outbox tries
again later); a 5xx reply is permanent. The envelope sender is the item's VERP
address, so a bounce names the exact message it concerns. Envelope addresses
carry A-label domains; a non-ASCII local part needs a relay that offers
SMTPUTF8, and without one that item fails (alone) with the reason.
"""

from __future__ import annotations

import re
import smtplib
import ssl
from collections.abc import Callable

from maild.config import RelaySettings
from maild.respond.address import UnusableAddress, mail_address
from maild.respond.delivery import PermanentFailure, TemporaryFailure

# Transparency (RFC 5321 4.5.2): a line that starts with "." gets one more.
_DOT_AT_LINE_START = re.compile(rb"(?m)^\.")


class SmtpRelayTransport:
    """Delivers through an SMTP relay with STARTTLS, implicit TLS or none, and optional AUTH."""

    def __init__(self, settings: RelaySettings, hostname: str | None = None) -> None:
        self.settings = settings
        self.hostname = hostname

    def _context(self) -> ssl.SSLContext:
        ca = str(self.settings.ca_file) if self.settings.ca_file else None
        return ssl.create_default_context(cafile=ca)

    def _password(self) -> str | None:
        if self.settings.password:
            return self.settings.password
        if self.settings.password_file:
            return self.settings.password_file.read_text(encoding="utf-8").strip()
        return None

    def deliver(self, item_id: int, raw: bytes, envelope_sender: str, recipient: str) -> str:
        """Send `raw` to `recipient`; raises TemporaryFailure or PermanentFailure."""
        return self.deliver_marked(item_id, raw, envelope_sender, recipient, lambda: None)

    def deliver_marked(self, item_id: int, raw: bytes, envelope_sender: str, recipient: str,
                       before_dot: Callable[[], None]) -> str:
        """Send `raw` to `recipient`, calling `before_dot` between the body and the final dot."""
        settings = self.settings
        try:
            to = mail_address(recipient)
            sender = str(mail_address(envelope_sender)) if envelope_sender else ""
        except UnusableAddress as error:
            raise PermanentFailure(str(error)) from error
        international = to.needs_smtputf8 or not envelope_sender.isascii() or not (
            raw.partition(b"\r\n\r\n")[0].isascii())
        try:
            client: smtplib.SMTP
            if settings.security == "tls":
                client = smtplib.SMTP_SSL(settings.host, settings.port, timeout=settings.timeout,
                                          local_hostname=self.hostname, context=self._context())
            else:
                client = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout,
                                      local_hostname=self.hostname)
            with client:
                client.ehlo()
                if settings.security == "starttls":
                    client.starttls(context=self._context())
                    client.ehlo()
                if settings.user:
                    client.login(settings.user, self._password() or "")
                options = _mail_options(client, raw, international, recipient)
                _send(client, sender, str(to), raw, options=options, before_dot=before_dot)
        except smtplib.SMTPResponseException as error:
            raise _failure(error.smtp_code, error.smtp_error, recipient) from error
        except (TimeoutError, smtplib.SMTPException, OSError, ssl.SSLError) as error:
            raise TemporaryFailure(f"relay {settings.host}:{settings.port}: "
                                   f"{type(error).__name__}: {error}") from error
        return f"relay {settings.host}:{settings.port} accepted it for {to}"


def _send(client: smtplib.SMTP, sender: str, recipient: str, raw: bytes, *, options: list[str],
          before_dot: Callable[[], None]) -> None:
    """MAIL, RCPT and DATA, with `before_dot` called after the body and before the final ".".

    smtplib's `data()` writes body and dot in one go; here they are two writes so
    that the outbox can commit its mark in between. If `before_dot` raises, the
    connection is dropped without the dot, so the relay discards what it got.
    """
    code, reply = client.mail(sender, options)
    if code != 250:
        raise smtplib.SMTPSenderRefused(code, reply, sender)
    code, reply = client.rcpt(recipient)
    if code not in (250, 251):
        raise smtplib.SMTPResponseException(code, reply)
    client.putcmd("data")
    code, reply = client.getreply()
    if code != 354:
        raise smtplib.SMTPDataError(code, reply)
    body = _DOT_AT_LINE_START.sub(b"..", raw)
    if not body.endswith(b"\r\n"):
        body += b"\r\n"
    client.send(body)
    try:
        before_dot()
    except BaseException:
        client.close()  # no dot: the relay must not take an unfinished message
        raise
    client.send(b".\r\n")
    code, reply = client.getreply()
    if code != 250:
        raise smtplib.SMTPDataError(code, reply)


def _mail_options(client: smtplib.SMTP, raw: bytes, international: bool,
                  recipient: str) -> list[str]:
    """SMTPUTF8 when the mail needs it (refused for good if the relay lacks it), 8BITMIME."""
    options = []
    if international:
        if not client.has_extn("smtputf8"):
            raise PermanentFailure(f"the relay does not offer SMTPUTF8, which mail to "
                                   f"{recipient} needs (a non-ASCII address)")
        options.append("SMTPUTF8")
    if not raw.isascii() and client.has_extn("8bitmime"):
        options.append("BODY=8BITMIME")
    return options


def _failure(code: int, text: bytes | str, recipient: str) -> TemporaryFailure | PermanentFailure:
    message = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
    detail = f"{code} {message} ({recipient})"
    return PermanentFailure(detail) if 500 <= code < 600 else TemporaryFailure(detail)
