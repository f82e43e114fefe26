"""SMTP and LMTP intake: accept mail for the served addresses, store it, only then say 250.

The handler follows aiosmtpd's hook protocol. RCPT accepts only the support
addresses of the rules in force (with +tag sub-addresses), so maild is never a
relay. DATA stores the raw bytes off the event loop and answers `250` only once
they are committed; a storage failure answers `451` and the client retries.
LMTP answers once per recipient, as RFC 2033 requires.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import ssl
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from email.utils import format_datetime
from typing import Any

from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import SMTP, Envelope, Session

from maild.db import StorageError
from maild.intake import Stored
from maild.log import get_logger
from maild.models import utcnow
from maild.routing.model import Rules

log = get_logger("maild.smtp")

# Per-session command budgets: a relay may send many messages on one connection,
# but a client looping on NOOP or RSET is cut off.
COMMAND_LIMITS = {"*": 100, "MAIL": 1000, "RCPT": 10000, "DATA": 1000, "RSET": 1000}

_SIZE_PARAMETER = re.compile(r"\bSIZE=(\d+)", re.IGNORECASE)
StoreFunction = Callable[[bytes, str | None, list[str], str, str], Awaitable[Stored]]


class _EnhancedSizeReplies:
    """aiosmtpd's size-limit replies, given RFC 3463 enhanced status 5.3.4, and logged.

    A refusal is logged once, with the client and the size: the size the client
    declared in MAIL FROM (SIZE=), or the bytes it sent after DATA.
    """

    data_size_limit: int | None
    session: Session | None
    _mail_arguments: str = ""
    _bytes_in: int = 0
    _data_started_at: int = 0

    def data_received(self, data: bytes) -> None:
        self._bytes_in += len(data)
        super().data_received(data)  # type: ignore[misc]

    async def smtp_MAIL(self, arg: str) -> None:
        self._mail_arguments = arg or ""
        await super().smtp_MAIL(arg)  # type: ignore[misc]

    async def push(self, status: Any) -> None:
        if isinstance(status, str) and status.startswith("354"):
            self._data_started_at = self._bytes_in
        elif isinstance(status, str) and status.startswith("552 Error"):
            self._log_refusal(data_sent="Too much mail data" in status)
            status = (f"552 5.3.4 Message too big for this system (at most "
                      f"{self.data_size_limit} bytes)")
        await super().push(status)  # type: ignore[misc]

    def _log_refusal(self, *, data_sent: bool) -> None:
        size: int | None
        if data_sent:
            size, stage = self._bytes_in - self._data_started_at, "data"
        else:
            declared = _SIZE_PARAMETER.search(self._mail_arguments)
            size, stage = (int(declared.group(1)) if declared else None), "mail"
        session = self.session
        log.warning("smtp.too_big", peer=_peer(session) if session else "unknown",
                    helo=getattr(session, "host_name", None), size=size,
                    limit=self.data_size_limit, stage=stage)


class MaildSMTP(_EnhancedSizeReplies, SMTP):
    """aiosmtpd's SMTP server with maild's size-limit replies."""


class MaildLMTP(_EnhancedSizeReplies, LMTP):
    """aiosmtpd's LMTP server with maild's size-limit replies."""


@dataclass
class InFlight:
    """Messages between the end of DATA and their reply: a drain waits for none to be left."""

    count: int = 0
    idle: asyncio.Event | None = None

    def start(self) -> None:
        self.count += 1
        if self.idle is not None:
            self.idle.clear()

    def finish(self) -> None:
        self.count -= 1
        if self.count == 0 and self.idle is not None:
            self.idle.set()

    async def wait_idle(self) -> None:
        """Return once no message is being stored."""
        if self.count == 0:
            return
        self.idle = self.idle or asyncio.Event()
        await self.idle.wait()


class IntakeHandler:
    """aiosmtpd hooks: refuse unknown recipients, store messages, answer honestly."""

    def __init__(self, *, store: StoreFunction, rules: Callable[[], Rules], hostname: str,
                 protocol: str, on_stored: Callable[[], None] | None = None) -> None:
        self.store = store
        self.rules = rules
        self.hostname = hostname
        self.protocol = protocol
        self.on_stored = on_stored or (lambda: None)
        self.in_flight = InFlight()

    async def handle_EHLO(self, server: SMTP, session: Session, envelope: Envelope,
                          hostname: str, responses: list[str]) -> list[str]:
        """Record the client's name; advertise PIPELINING, and no AUTH (maild is no relay)."""
        session.host_name = hostname
        lines = [line for line in responses if not line.startswith("250-AUTH")]
        # aiosmtpd reads commands in order from one stream, so a client may pipeline them
        # (RFC 2920); Postfix's smtp and lmtp clients do when this is advertised.
        return [*lines[:-1], "250-PIPELINING", *lines[-1:]]

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope,
                          address: str, rcpt_options: Sequence[str]) -> str:
        """Accept a served support address (also with +tag); refuse anything else with 550."""
        if self.rules().support_address(address) is None:
            log.info("smtp.rcpt_refused", recipient=address, peer=_peer(session))
            return f"550 5.1.1 <{address}>: no such support address here"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    def received_header(self, session: Session, envelope: Envelope, queue_id: str) -> bytes:
        """A trace header naming the client's address and HELO, as RFC 5321 asks."""
        helo = (session.host_name or "unknown").replace("\r", "").replace("\n", "")[:200]
        peer = _peer(session)
        tls = "S" if getattr(session, "ssl", None) else ""
        with_ = "LMTP" if self.protocol == "lmtp" else f"ESMTP{tls}"
        recipient = f"\r\n\tfor <{envelope.rcpt_tos[0]}>" if len(envelope.rcpt_tos) == 1 else ""
        return (f"Received: from {helo} ([{peer}])\r\n\tby {self.hostname} (maild) with "
                f"{with_} id {queue_id}{recipient};\r\n\t{format_datetime(utcnow())}\r\n"
                ).encode("utf-8", "replace")

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        """Store the message durably, then answer 250 (per recipient under LMTP), or 451."""
        queue_id = secrets.token_hex(6)
        content = envelope.original_content or b""
        raw = self.received_header(session, envelope, queue_id) + content
        recipients = list(envelope.rcpt_tos)
        self.in_flight.start()
        try:
            stored = await self.store(raw, envelope.mail_from, recipients, self.protocol,
                                      f"{self.protocol} {_peer(session)} {queue_id}")
        except StorageError as error:
            log.error("smtp.store_failed", error=str(error), peer=_peer(session),
                      queue_id=queue_id)
            reply = "451 4.3.0 Temporary failure storing the message, please try again later"
            return "\r\n".join([reply] * len(recipients)) if self.protocol == "lmtp" else reply
        finally:
            self.in_flight.finish()
        self.on_stored()
        reply = f"250 2.0.0 Stored as {stored.inbound_id}"
        log.info("smtp.accepted", inbound_id=stored.inbound_id, duplicate=stored.duplicate,
                 peer=_peer(session), queue_id=queue_id, size=len(raw))
        if self.protocol == "lmtp":
            return "\r\n".join(f"{reply} for <{rcpt}>" for rcpt in recipients)
        return reply


def _peer(session: Session) -> str:
    peer = session.peer
    if isinstance(peer, tuple) and peer:
        return str(peer[0])
    return str(peer or "local")


def make_server_factory(handler: IntakeHandler, *, hostname: str, max_size: int,
                        timeout: int, tls: ssl.SSLContext | None) -> Callable[[], SMTP]:
    """A protocol factory for `loop.create_server`: one SMTP or LMTP session per connection."""
    server_class = MaildLMTP if handler.protocol == "lmtp" else MaildSMTP

    def factory() -> SMTP:
        return server_class(
            handler,
            hostname=hostname,
            data_size_limit=max_size,
            enable_SMTPUTF8=True,
            decode_data=False,
            timeout=timeout,
            tls_context=tls if handler.protocol == "smtp" else None,
            auth_require_tls=True,
            command_call_limit=COMMAND_LIMITS,
            ident="maild",
        )

    return factory


def tls_context(cert: str, key: str) -> ssl.SSLContext:
    """A server TLS context from a PEM certificate (chain) and key."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    return context
