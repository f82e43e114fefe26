"""`maild run`: one asyncio process with the listeners, pollers and workers the config enables.

Start-up is assembled in one AsyncExitStack, so whatever started is stopped
again in reverse order. Blocking work (database, imapclient, fsync) runs in
threads. SIGHUP reloads the rules; SIGTERM (or SIGINT) drains: listeners stop
accepting, messages being stored are committed and answered, IMAP pollers
finish their message, the worker finishes its message, then maild exits 0.

Exit codes: 0 stopped cleanly, 69 a listener could not be opened,
75 the database is unavailable, 78 the configuration or rules are broken.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import ssl
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from aiosmtpd.smtp import SMTP

from maild import systemd
from maild.cluster.lease import NamedLease, holder_name
from maild.config import Config, ListenAddress, UnixSocketAccess
from maild.db import StorageError, open_database
from maild.group_commit import GroupCommitter
from maild.heap import settle as settle_heap
from maild.intake import Stored
from maild.log import get_logger
from maild.models import utcnow
from maild.processing import Processor
from maild.routing.model import Rules
from maild.routing.reload import LiveRules
from maild.runtime import deliver_due, make_processor
from maild.sla.monitor import run_monitor
from maild.transports.imap import LEASE_SECONDS, FolderPoller, PollerHealth
from maild.transports.smtp import (
    AcceptErrorLog,
    ConnectionLimits,
    IntakeHandler,
    make_server_factory,
    tls_context,
)
from maild.transports.unix_socket import SocketSetupError, bind_unix_socket
from maild.workers.pool import WorkerPool, worker_command

log = get_logger("maild.daemon")

EX_UNAVAILABLE = 69


class ListenError(Exception):
    """A listening socket could not be opened."""


@dataclass
class Counters:
    """What the daemon has done since it started, for STATUS= and logs."""

    stored: int = 0
    processed: int = 0
    quarantined: int = 0
    sent: int = 0

    def status(self, listening: str, problems: list[str] | None = None) -> str:
        """The one-line STATUS=: listeners, counts, then any problem an operator must see."""
        line = (f"{listening}; stored {self.stored}, processed {self.processed}, "
                f"quarantined {self.quarantined}, sent {self.sent}")
        return "; ".join([line, *(problems or [])])


async def woken(event: asyncio.Event, seconds: float) -> None:
    """Return once `event` is set, or after `seconds`, whichever comes first.

    At once when it is set already: a loop woken for every stored message should not
    pay for `asyncio.wait_for`'s task and timer each time.
    """
    if event.is_set():
        return
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await event.wait()


@dataclass
class Daemon:
    """The running maild: its parts and the events that drive them."""

    config: Config
    live: LiveRules
    processor: Processor
    pool: WorkerPool | None = None         # processing in worker processes (processing.workers)
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    work: asyncio.Event = field(default_factory=asyncio.Event)
    sla_wake: asyncio.Event = field(default_factory=asyncio.Event)
    outbox_wake: asyncio.Event = field(default_factory=asyncio.Event)
    outbox_lease_ends: datetime | None = None  # the earliest claim end the last pass saw
    counters: Counters = field(default_factory=Counters)
    handlers: list[IntakeHandler] = field(default_factory=list)
    imap_health: list[PollerHealth] = field(default_factory=list)
    servers: list[asyncio.AbstractServer] = field(default_factory=list)
    sessions: weakref.WeakSet[SMTP] = field(default_factory=weakref.WeakSet)
    listening: list[str] = field(default_factory=list)
    stop_threads: threading.Event = field(default_factory=threading.Event)
    loop: asyncio.AbstractEventLoop = field(default_factory=asyncio.get_running_loop)
    committer: GroupCommitter = field(init=False)
    pollers: list[FolderPoller] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.committer = GroupCommitter(self.processor.engine)

    # -- intake ---------------------------------------------------------------------------
    async def store(self, raw: bytes, sender: str | None, recipients: list[str],
                    transport: str, source: str) -> Stored:
        stored = await self.committer.store(raw, sender, recipients, transport, source)
        self.counters.stored += 0 if stored.duplicate else 1
        return stored

    def wake_worker(self) -> None:
        self.work.set()

    def wake_from_thread(self) -> None:
        """Wake the worker from a poller thread."""
        self.loop.call_soon_threadsafe(self.work.set)

    async def open_listener(self, address: ListenAddress, protocol: str) -> None:
        hostname = self.config.smtp_hostname or socket.getfqdn()
        handler = IntakeHandler(store=self.store, rules=lambda: self.live.current,
                                hostname=hostname, protocol=protocol, on_stored=self.wake_worker)
        tls: ssl.SSLContext | None = None
        if self.config.tls_cert and self.config.tls_key and protocol == "smtp":
            tls = await asyncio.to_thread(tls_context, str(self.config.tls_cert),
                                          str(self.config.tls_key))
        limits = ConnectionLimits(total=self.config.max_connections,
                                  per_client=self.config.max_connections_per_client)
        make = make_server_factory(handler, hostname=hostname,
                                   max_size=self.config.max_message_size,
                                   timeout=self.config.smtp_timeout, tls=tls, limits=limits)

        def factory() -> SMTP:
            session = make()
            self.sessions.add(session)
            return session

        loop = asyncio.get_running_loop()
        if not isinstance(loop.get_exception_handler(), AcceptErrorLog):
            loop.set_exception_handler(AcceptErrorLog())
        try:
            if address.path is not None:
                listener = await asyncio.to_thread(bind_unix_socket, address.path,
                                                   self.config.lmtp_socket or UnixSocketAccess())
                server = await loop.create_unix_server(factory, sock=listener)
            else:
                server = await loop.create_server(factory, address.host, address.port or 25)
        except SocketSetupError as error:
            raise ListenError(f"cannot listen for {protocol.upper()} on {address}: "
                              f"{error}") from error
        except OSError as error:
            raise ListenError(f"cannot listen for {protocol.upper()} on {address}: "
                              f"{error.strerror or error}") from error
        self.handlers.append(handler)
        self.servers.append(server)
        self.listening.append(f"{protocol} {address}")
        log.info("listener.started", protocol=protocol, address=str(address),
                 starttls=tls is not None)

    # -- workers ----------------------------------------------------------------------------
    async def process_loop(self) -> None:
        """Process stored messages whenever woken, and every worker interval anyway.

        With worker processes (`processing.workers`), wake them instead: they process.
        """
        while not self.stopping.is_set():
            await woken(self.work, self.config.worker_interval)
            self.work.clear()
            if self.pool is not None:
                self.pool.wake()
                continue
            try:
                counts = await asyncio.to_thread(self.processor.run_pending,
                                                 stop=self.stopping.is_set)
            except Exception as error:  # the worker outlives database trouble
                log.error("daemon.process_failed", error=f"{type(error).__name__}: {error}"[:500],
                          retry_in=self.config.worker_interval)
                continue
            self.record_pass(counts)

    def record_pass(self, counts: Mapping[str, int]) -> None:
        """A processing pass (here or in a worker process): count it, wake outbox and SLA."""
        self.counters.processed += counts.get("processed", 0)
        self.counters.quarantined += counts.get("quarantined", 0)
        if counts.get("processed"):
            self.sla_wake.set()
            self.wake_outbox()
        self.status()

    def wake_outbox(self) -> None:
        """Ask the outbox loop for a pass now rather than at its next interval."""
        self.outbox_wake.set()

    async def flush(self, *, last: bool = False) -> None:
        """One outbox pass in a thread; a pass that stopped at its batch size asks for another.

        A pass stops claiming items once the daemon stops, except the `last` one.
        """
        stop = None if last else self.stopping.is_set
        try:
            report = await asyncio.to_thread(deliver_due, self.config, self.processor.engine,
                                             stop)
        except Exception as error:  # the next pass tries again
            log.error("daemon.outbox_failed", error=f"{type(error).__name__}: {error}"[:500])
            return
        self.counters.sent += report.sent
        self.outbox_lease_ends = report.lease_ends
        if report.left:
            self.outbox_wake.set()

    async def outbox_loop(self) -> None:
        """The daemon's one outbox sender: a pass when woken, and every outbox interval anyway."""
        while not self.stopping.is_set():
            await woken(self.outbox_wake, self.outbox_wait())
            self.outbox_wake.clear()
            if not self.stopping.is_set():
                await self.flush()

    def outbox_wait(self) -> float:
        """Seconds until the next pass: the interval, or less when a claim runs out sooner.

        An item held by a killed instance is thus taken over as soon as its lease
        has run out (at most `outbox.lease_seconds` after the kill), not up to an
        interval later.
        """
        interval = self.config.outbox_interval
        if self.outbox_lease_ends is None:
            return interval
        until = (self.outbox_lease_ends - utcnow()).total_seconds() + 0.2
        return float(min(interval, max(until, 1.0)))

    async def sla_loop(self, interval: float = 60.0) -> None:
        """Run the breach monitor every minute over the open tickets, and right after new
        tickets over those opened since its last pass (a P1 escalates on open).

        A busy daemon wakes it after every processing pass: reading every open ticket
        each time would cost it more than the mail does.
        """
        domain = self.config.mail_domain or self.live.current.default_address.address.rpartition(
            "@")[2]
        looked_at = 0  # the highest ticket id a pass has looked at
        next_full = 0.0
        while not self.stopping.is_set():
            full = time.monotonic() >= next_full
            try:
                report = await asyncio.to_thread(
                    run_monitor, self.processor.engine, self.live.current, utcnow(), domain,
                    after_id=0 if full else looked_at)
            except Exception as error:  # the next minute tries again
                log.error("daemon.sla_failed", error=f"{type(error).__name__}: {error}"[:500])
            else:
                looked_at = max(looked_at, report.last_ticket_id)
                if report.escalated or report.warned:
                    self.wake_outbox()
            if full:
                next_full = time.monotonic() + interval
            await woken(self.sla_wake, max(next_full - time.monotonic(), 0.0))
            self.sla_wake.clear()

    async def watchdog_loop(self, interval: float) -> None:
        while not self.stopping.is_set():
            systemd.notify("WATCHDOG=1")
            await woken(self.stopping, interval)

    def status(self) -> None:
        problems = [problem for health in self.imap_health
                    if (problem := health.problem()) is not None]
        if self.pool is not None and self.pool.alive() < self.pool.count:
            problems.append(f"processing workers: {self.pool.alive()} of {self.pool.count} "
                            "running")
        systemd.notify("STATUS=" + self.counters.status(
            ", ".join(self.listening) or "no listeners", problems))

    def status_from_thread(self, health: PollerHealth) -> None:
        """Refresh STATUS= when a poller's health changes (called from its thread)."""
        self.loop.call_soon_threadsafe(self.status)

    def start_pollers(self) -> list[threading.Thread]:
        threads = []
        holder = holder_name()
        for account in self.config.imap:
            recipient = account.recipient or account.user
            for folder in account.folders:
                # One lease per mailbox folder, whatever the account is called in each config.
                lease = NamedLease(self.processor.engine,
                                   f"imap {account.user}@{account.host}:{account.port}/{folder}",
                                   holder, duration=timedelta(seconds=LEASE_SECONDS))
                poller = FolderPoller(account, folder, self.processor.engine,
                                      recipients=[recipient], on_stored=self.wake_from_thread,
                                      stop=self.stop_threads, on_health=self.status_from_thread,
                                      lease=lease)
                self.imap_health.append(poller.health)
                thread = threading.Thread(target=poller.run, daemon=True,
                                          name=f"imap-{account.name}-{folder}")
                thread.start()
                threads.append(thread)
                self.pollers.append(poller)
                log.info("imap.poller_started", account=account.name, folder=folder)
        return threads

    # -- reload and drain -------------------------------------------------------------------
    async def reload(self) -> None:
        changed = await asyncio.to_thread(self.live.reload)
        log.info("rules.sighup", changed=changed, version=self.live.current.version)

    async def drain(self, pollers: list[threading.Thread]) -> None:
        """Stop accepting; let what is being stored finish and be answered; then close."""
        systemd.notify("STOPPING=1")
        log.info("daemon.draining", seconds=self.config.drain_seconds)
        for server in self.servers:
            server.close()
        self.stop_threads.set()

        async def settle() -> None:
            for handler in self.handlers:
                await handler.in_flight.wait_idle()
            while pollers and any(thread.is_alive() for thread in pollers):
                await asyncio.sleep(0.05)

        try:
            await asyncio.wait_for(settle(), self.config.drain_seconds)
        except TimeoutError:
            log.warning("daemon.drain_timeout", seconds=self.config.drain_seconds)
        for session in list(self.sessions):
            transport: Any = getattr(session, "transport", None)
            if transport is not None:
                transport.close()
        for server in self.servers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 1)


async def serve(config: Config, live: LiveRules) -> int:
    """Run until SIGTERM or SIGINT; returns the exit code."""
    try:
        engine = await asyncio.to_thread(open_database, config.database_url)
    except StorageError as error:
        log.error("daemon.database_unavailable", error=str(error))
        return 75
    processor = make_processor(config, engine, lambda: live.current,
                               beside_listeners=not config.processing_workers)
    daemon = Daemon(config=config, live=live, processor=processor)
    loop = asyncio.get_running_loop()
    async with AsyncExitStack() as stack:
        stack.callback(engine.dispose)
        if config.processing_workers:
            command, env = worker_command(config)
            pool = daemon.pool = WorkerPool(config.processing_workers, command, env,
                                            on_report=daemon.record_pass)
            pool.start()
            stack.push_async_callback(pool.stop, config.drain_seconds)

            def reload_workers(_: Rules) -> None:  # a reload may come from a web thread
                loop.call_soon_threadsafe(pool.reload)

            live.listeners.append(reload_workers)
            log.info("daemon.workers", processes=config.processing_workers)
        try:
            for address in config.smtp_listen:
                await daemon.open_listener(address, "smtp")
            for address in config.lmtp_listen:
                await daemon.open_listener(address, "lmtp")
        except ListenError as error:
            log.error("daemon.listen_failed", error=str(error))
            for server in daemon.servers:
                server.close()
            return EX_UNAVAILABLE
        daemon.committer.start()
        stack.push_async_callback(daemon.committer.stop)
        pollers = daemon.start_pollers()
        tasks = [asyncio.create_task(daemon.process_loop(), name="process"),
                 asyncio.create_task(daemon.outbox_loop(), name="outbox"),
                 asyncio.create_task(live.watch(), name="rules-watch"),
                 asyncio.create_task(daemon.sla_loop(), name="sla-monitor")]
        interval = systemd.watchdog_interval()
        if interval:
            tasks.append(asyncio.create_task(daemon.watchdog_loop(interval), name="watchdog"))
        stack.push_async_callback(_cancel, tasks)
        if config.http_listen is not None:
            try:
                web = await _start_web(daemon, engine, tasks)
            except OSError as error:
                log.error("daemon.listen_failed", error=f"cannot listen for HTTP on "
                          f"{config.http_listen}: {error.strerror or error}")
                daemon.stopping.set()
                return EX_UNAVAILABLE
            stack.push_async_callback(web.stop)
            daemon.listening.append(f"http {config.http_listen}")
        settle_heap()  # set up: what exists now lives as long as the daemon

        reloads: set[asyncio.Task[None]] = set()

        def on_hup() -> None:
            task = asyncio.create_task(daemon.reload())
            reloads.add(task)
            task.add_done_callback(reloads.discard)

        loop.add_signal_handler(signal.SIGHUP, on_hup)
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, daemon.stopping.set)
        stack.callback(_remove_signal_handlers, loop)

        daemon.work.set()  # process what waited while maild was down
        systemd.notify("READY=1")
        daemon.status()
        log.info("daemon.ready", listening=daemon.listening, imap=len(pollers),
                 rules_version=live.current.version, database=_safe_url(config.database_url))
        await daemon.stopping.wait()
        daemon.wake_outbox()  # the outbox loop sees the stop at once
        await daemon.drain(pollers)
        with contextlib.suppress(TimeoutError):  # the worker finishes its current message
            await asyncio.wait_for(asyncio.shield(tasks[0]), timeout=config.drain_seconds)
        if daemon.pool is not None:  # the worker processes finish their current batch
            await daemon.pool.stop(config.drain_seconds)
        with contextlib.suppress(TimeoutError):  # and the outbox its current pass
            await asyncio.wait_for(asyncio.shield(tasks[1]), timeout=config.drain_seconds)
        await daemon.flush(last=True)
    log.info("daemon.stopped", stored=daemon.counters.stored,
             processed=daemon.counters.processed)
    return 0


async def _start_web(daemon: Daemon, engine: Any, tasks: list[asyncio.Task[None]]) -> Any:
    """The web on `[http] listen`, with health from the worker tasks and IMAP pollers."""
    from maild.web.serve import start_web

    def workers() -> dict[str, bool]:
        alive = {task.get_name(): not task.done() for task in tasks}
        if daemon.pool is not None:
            for index, process in daemon.pool.processes.items():
                alive[f"processing-worker-{index}"] = process.returncode is None
        running = {thread.name for thread in threading.enumerate()}
        for poller in daemon.pollers:
            name = f"imap-{poller.account.name}-{poller.folder}"
            alive[name] = name in running
        return alive

    def imap() -> dict[tuple[str, str], float | None]:
        return {(p.account.name, p.folder): p.health.last_success.timestamp()
                if p.health.last_success else None for p in daemon.pollers}

    flushing: set[asyncio.Task[None]] = set()

    def deliver_soon() -> None:  # a reply from the web goes out now, not at the next interval
        task = asyncio.create_task(daemon.flush())
        flushing.add(task)
        task.add_done_callback(flushing.discard)

    return await start_web(daemon.config, engine, daemon.live, workers=workers, imap=imap,
                           outbox_added=deliver_soon)


async def _cancel(tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def _remove_signal_handlers(loop: asyncio.AbstractEventLoop) -> None:
    for signum in (signal.SIGHUP, signal.SIGTERM, signal.SIGINT):
        loop.remove_signal_handler(signum)
    # Shutting down already: a repeated SIGTERM must not cut the last commits short
    # (systemd sends SIGKILL itself when TimeoutStopSec runs out).
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def _safe_url(url: str) -> str:
    """The database URL without a password, for logs."""
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    credentials, host = rest.rsplit("@", 1)
    return f"{scheme}://{credentials.split(':', 1)[0]}@{host}"


def run(config: Config, live_factory: Callable[[], LiveRules]) -> int:
    """Start the daemon (rules must load first) and run it to the end; returns the exit code."""
    live = live_factory()
    return asyncio.run(serve(config, live))
