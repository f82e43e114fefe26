"""SMTP and LMTP intake: accept mail for the served addresses, store it, only then say 250.

The handler follows aiosmtpd's hook protocol. RCPT accepts only the support
addresses of the rules in force (with +tag sub-addresses), so maild is never a
relay. DATA stores the raw bytes off the event loop and answers `250` only once
they are committed; a storage failure answers `451` and the client retries.
DATA's content is read a block at a time (`maild.transports.smtp_data`), with
aiosmtpd's result, where aiosmtpd reads it a line at a time.
LMTP answers once per recipient, as RFC 2033 requires.

Connections are limited in all and per client address (`ConnectionLimits`), so
idle or hostile clients cannot take every file descriptor: a connection over a
limit is answered `421` and closed at once, and the refusals are logged once
per interval. maild offers no AUTH: the command is answered `502 5.5.1` like a
command it does not implement, and a second STARTTLS inside TLS `503`.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import ssl
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import MISSING, SMTP, Envelope, Session, syntax

from maild.db import StorageError
from maild.intake import Stored
from maild.log import get_logger
from maild.routing.model import Rules
from maild.transports.smtp_address import plain_path
from maild.transports.smtp_data import Refusal, read_data
from maild.transports.smtp_idle import IdleDeadline
from maild.transports.stamp import date_now

log = get_logger("maild.smtp")

# Per-session command budgets: a relay may send many messages on one connection,
# but a client looping on NOOP or RSET is cut off.
COMMAND_LIMITS = {"*": 100, "MAIL": 1000, "RCPT": 10000, "DATA": 1000, "RSET": 1000}

_SIZE_PARAMETER = re.compile(r"\bSIZE=(\d+)", re.IGNORECASE)
StoreFunction = Callable[[bytes, str | None, list[str], str, str], Awaitable[Stored]]

# How often a refused connection or a failing accept() is logged, at most.
REFUSAL_LOG_INTERVAL = 60.0


@dataclass
class ConnectionLimits:
    """The connections a listener holds at once, in all and per client address."""

    total: int
    per_client: int
    log_interval: float = REFUSAL_LOG_INTERVAL
    open: Counter[str] = field(default_factory=Counter)
    refused_since_log: int = 0
    last_log: float = float("-inf")

    def admit(self, client: str) -> str | None:
        """Count a new connection from `client`, or say why it is refused (counting nothing)."""
        if sum(self.open.values()) >= self.total:
            reason = f"{self.total} connections open, the most this listener takes"
        elif self.open[client] >= self.per_client:
            reason = f"{self.per_client} connections open from this client, the most allowed"
        else:
            self.open[client] += 1
            return None
        self._log_refusal(client, reason)
        return reason

    def release(self, client: str) -> None:
        """Forget one closed connection from `client`."""
        self.open[client] -= 1
        if self.open[client] <= 0:
            del self.open[client]

    def _log_refusal(self, client: str, reason: str) -> None:
        self.refused_since_log += 1
        now = time.monotonic()
        if now - self.last_log < self.log_interval:
            return
        log.warning("smtp.connection_refused", client=client, reason=reason,
                    refused=self.refused_since_log, open=sum(self.open.values()),
                    interval_seconds=self.log_interval)
        self.last_log = now
        self.refused_since_log = 0


class AcceptErrorLog:
    """An event-loop exception handler: a failing accept() is logged once per interval.

    Out of file descriptors, asyncio retries accept() every second and reports each
    failure with a traceback; one line a minute says the same.
    """

    def __init__(self, interval: float = REFUSAL_LOG_INTERVAL) -> None:
        self.interval = interval
        self.failures = 0
        self.last_log = float("-inf")

    def __call__(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if not str(context.get("message", "")).startswith("socket.accept()"):
            loop.default_exception_handler(context)
            return
        self.failures += 1
        now = time.monotonic()
        if now - self.last_log >= self.interval:
            log.error("smtp.accept_failed", error=str(context.get("exception")),
                      failures=self.failures, interval_seconds=self.interval)
            self.last_log = now
            self.failures = 0


class _MaildSession(IdleDeadline):
    """aiosmtpd's server with maild's replies: size limits, AUTH, STARTTLS, connection limits.

    Mixed into SMTP or LMTP; its idle timeout is `IdleDeadline`'s.

    A size refusal gets RFC 3463 enhanced status 5.3.4 and is logged once, with the
    client and the size: the size the client declared in MAIL FROM (SIZE=), or the
    bytes it sent after DATA.
    """

    data_size_limit: int | None
    line_length_limit: int
    local_part_limit: int
    hostname: str
    session: Session | None
    limits: ConnectionLimits | None = None
    _client: str | None = None
    _refused = False
    _mail_arguments: str = ""
    _bytes_in: int = 0
    _data_started_at: int = 0

    def data_received(self, data: bytes) -> None:
        self._bytes_in += len(data)
        super().data_received(data)

    async def smtp_MAIL(self, arg: str) -> None:
        self._mail_arguments = arg or ""
        await super().smtp_MAIL(arg)

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        """The path of MAIL or RCPT: a plain one read at once, any other by aiosmtpd."""
        plain = plain_path(arg)
        if plain is None:
            return super()._getaddr(arg)
        address, rest = plain
        if self.local_part_limit and len(address.rpartition("@")[0]) > self.local_part_limit:
            return None, None
        return address, rest

    async def push(self, status: Any) -> None:
        if isinstance(status, str) and status.startswith("354"):
            self._data_started_at = self._bytes_in
        elif isinstance(status, str) and status.startswith("552 Error"):
            self._log_refusal(data_sent="Too much mail data" in status)
            status = (f"552 5.3.4 Message too big for this system (at most "
                      f"{self.data_size_limit} bytes)")
        await super().push(status)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Admit the connection within the limits, or answer 421 and close it at once."""
        if self.limits is not None and self._client is None and not self._refused:
            peer = transport.get_extra_info("peername")
            client = str(peer[0]) if isinstance(peer, tuple) and peer else "local"
            if self.limits.admit(client) is not None:
                self._refused = True
                assert isinstance(transport, asyncio.WriteTransport)
                transport.write(f"421 4.7.0 {self.hostname} Too many connections, "
                                f"try again later\r\n".encode())
                transport.close()
                return
            self._client = client
        super().connection_made(transport)

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


    def connection_lost(self, error: Exception | None) -> None:
        if self._refused:
            return
        if self.limits is not None and self._client is not None:
            self.limits.release(self._client)
            self._client = None
        super().connection_lost(error)

    @syntax("DATA")
    async def smtp_DATA(self, arg: str) -> None:
        """aiosmtpd's DATA, its content read a block at a time (`maild.transports.smtp_data`).

        The checks before 354, the replies to a refused content and the handler's call
        are aiosmtpd's own; maild reads DATA as bytes (`decode_data=False`), and a server
        that decodes it is left to aiosmtpd entirely.
        """
        if self._decode_data:
            await super().smtp_DATA(arg)
            return
        if await self.check_helo_needed() or await self.check_auth_needed("DATA"):
            return
        assert self.envelope is not None
        if not self.envelope.rcpt_tos:
            await self.push("503 Error: need RCPT command")
            return
        if arg:
            await self.push("501 Syntax: DATA")
            return
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        try:
            read = await read_data(self._reader, line_limit=self.line_length_limit,
                                   size_limit=self.data_size_limit)
        except asyncio.CancelledError:
            session = self.session
            log.info("smtp.data_interrupted", peer=_peer(session) if session else "unknown",
                     received=self._bytes_in - self._data_started_at)
            self._writer.close()
            raise
        if read.refusal is not None:
            await self.push("500 Line too long (see RFC5321 4.5.3.1.6)"
                            if read.refusal is Refusal.LINE_TOO_LONG
                            else "552 Error: Too much mail data")
            self._set_post_data_state()  # type: ignore[no-untyped-call]
            return
        self.envelope.content = self.envelope.original_content = read.content
        del read  # the handler may let go of the content (IntakeHandler does)
        status = (await self._call_handler_hook("DATA") if "DATA" in self._handle_hooks
                  else MISSING)
        self._set_post_data_state()  # type: ignore[no-untyped-call]
        await self.push("250 OK" if status is MISSING else status)

    async def smtp_AUTH(self, arg: str) -> None:
        """maild takes no authentication: AUTH is a command it does not implement."""
        await self.push("502 5.5.1 Command not implemented")

    async def smtp_STARTTLS(self, arg: str) -> None:
        """Start TLS once; inside TLS the command is out of sequence (RFC 3207)."""
        if getattr(self, "_tls_protocol", None) is not None:
            await self.push("503 5.5.1 TLS already active")
            return
        await super().smtp_STARTTLS(arg)


class MaildSMTP(_MaildSession, SMTP):
    """aiosmtpd's SMTP server with maild's replies and connection limits."""


class MaildLMTP(_MaildSession, LMTP):
    """aiosmtpd's LMTP server with maild's replies and connection limits."""


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
                f"{with_} id {queue_id}{recipient};\r\n\t{date_now()}\r\n"
                ).encode("utf-8", "replace")

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        """Store the message durably, then answer 250 (per recipient under LMTP), or 451."""
        queue_id = secrets.token_hex(6)
        raw = self.received_header(session, envelope, queue_id) + (
            envelope.original_content or b"")
        # From here only `raw` holds the message: a large one is not held twice while stored.
        envelope.content = envelope.original_content = None
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
                        timeout: int, tls: ssl.SSLContext | None,
                        limits: ConnectionLimits | None = None) -> Callable[[], SMTP]:
    """A protocol factory for `loop.create_server`: one SMTP or LMTP session per connection."""
    server_class = MaildLMTP if handler.protocol == "lmtp" else MaildSMTP

    def factory() -> SMTP:
        server = server_class(
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
        server.limits = limits
        return server

    return factory


def tls_context(cert: str, key: str) -> ssl.SSLContext:
    """A server TLS context from a PEM certificate (chain) and key."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    return context
