"""Running the web inside the daemon's event loop: uvicorn on one loopback (or set) address."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Awaitable, Callable, Generator
from typing import Any

import uvicorn
from sqlalchemy import Engine, text

from maild.config import Config, ListenAddress
from maild.log import get_logger
from maild.routing.reload import LiveRules
from maild.tickets.numbering import TicketNumbering
from maild.web.app import WebContext, build_app
from maild.web.metrics import Metrics, ProcessState

log = get_logger("maild.web")


class _EmbeddedServer(uvicorn.Server):
    """uvicorn without its own signal handling: the daemon owns SIGTERM and SIGHUP."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def bind(address: ListenAddress) -> socket.socket:
    """A listening TCP socket on `address` (OSError when it cannot be opened)."""
    assert address.host is not None
    assert address.port is not None
    family = socket.AF_INET6 if ":" in address.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((address.host, address.port))
        sock.listen(128)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


def _database_ok(engine: Engine) -> str:
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as error:  # any driver error means "not reachable"
        return f"{type(error).__name__}: {error}"[:300]
    return "ok"


class WebServer:
    """The web of a running daemon; `stop()` ends it."""

    def __init__(self, server: _EmbeddedServer, task: asyncio.Task[None]) -> None:
        self.server = server
        self.task = task

    async def stop(self) -> None:
        """Stop accepting and finish the requests in flight."""
        self.server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError, TimeoutError):
            await asyncio.wait_for(self.task, 10)


async def start_web(config: Config, engine: Engine, live: LiveRules, *,
                    workers: Callable[[], dict[str, bool]],
                    imap: Callable[[], dict[tuple[str, str], float | None]],
                    outbox_added: Callable[[], None]) -> WebServer:
    """Open `[http] listen` and serve the web there; raises OSError when it cannot listen."""
    assert config.http_listen is not None
    metrics = Metrics(engine, ProcessState(imap_last_success=imap,
                                           rules_version=lambda: live.current.version,
                                           reload_failures=lambda: live.reload_failures))

    async def health() -> dict[str, Any]:
        database = await asyncio.wait_for(asyncio.to_thread(_database_ok, engine), 10)
        alive = workers()
        healthy = database == "ok" and all(alive.values())
        return {"status": "ok" if healthy else "failing", "database": database,
                "workers": {name: "running" if ok else "stopped" for name, ok in alive.items()}}

    async def render_metrics() -> bytes:
        return await asyncio.to_thread(metrics.render)

    async def reload_rules() -> bool:
        return await asyncio.to_thread(live.reload)

    domain = config.mail_domain or live.current.default_address.address.rpartition("@")[2]
    web = WebContext(config=config, engine=engine, rules=lambda: live.current,
                     numbering=TicketNumbering(config.ticket_prefix), domain=domain,
                     outbox_added=outbox_added, health=health, metrics=render_metrics,
                     reload_rules=reload_rules)
    sock = await asyncio.to_thread(bind, config.http_listen)
    settings = uvicorn.Config(build_app(web), log_config=None, access_log=False,
                              lifespan="off", proxy_headers=True,
                              forwarded_allow_ips=list(config.http_trusted_proxies),
                              server_header=False)
    server = _EmbeddedServer(settings)
    serving: Awaitable[None] = server.serve(sockets=[sock])
    task = asyncio.ensure_future(serving)
    log.info("web.started", address=str(config.http_listen))
    return WebServer(server, task)
