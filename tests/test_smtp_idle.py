"""The idle timeout of maild's SMTP sessions: closed a timeout after the last command, on
one timer per session, over real loopback connections."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP

from maild.transports.smtp import MaildSMTP

TIMEOUT = 1.0


@dataclass
class _Server:
    """maild's SMTP server on a loopback port, and the timers its sessions have set."""

    port: int = 0
    session_timers: int = 0


@pytest.fixture
def server() -> Iterator[_Server]:
    """The server, its event loop in a thread, with a session timeout of `TIMEOUT`."""
    loop = asyncio.new_event_loop()
    served = _Server()
    call_at = loop.call_at

    def counting_call_at(when: float, callback: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(getattr(callback, "__self__", None), SMTP):
            served.session_timers += 1
        return call_at(when, callback, *args, **kwargs)

    loop.call_at = counting_call_at  # type: ignore[method-assign]

    async def start() -> int:
        listening = await loop.create_server(
            lambda: MaildSMTP(None, hostname="idle.test", timeout=TIMEOUT), "127.0.0.1", 0)
        return int(listening.sockets[0].getsockname()[1])

    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    served.port = asyncio.run_coroutine_threadsafe(start(), loop).result(10)
    yield served
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)


def _command(connection: socket.socket, line: bytes) -> bytes:
    connection.sendall(line)
    return connection.recv(4096)


def _closed_at(connection: socket.socket) -> float:
    """When the server closed `connection`, waiting up to 10 s for it."""
    connection.settimeout(10)
    while connection.recv(4096):
        pass
    return time.monotonic()


def test_a_session_is_closed_its_timeout_after_the_last_command_not_the_first(
        server: _Server) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as connection:
        assert connection.recv(4096).startswith(b"220")
        for _ in range(5):  # commands for 1.6 times the timeout, each well within it
            assert _command(connection, b"NOOP\r\n").startswith(b"250")
            time.sleep(TIMEOUT * 0.4)
        last = time.monotonic()
        assert _command(connection, b"NOOP\r\n").startswith(b"250"), "still open"
        waited = _closed_at(connection) - last
    assert TIMEOUT * 0.95 <= waited < TIMEOUT + 0.75, waited


def test_commands_move_the_deadline_without_a_timer_each(server: _Server) -> None:
    """aiosmtpd sets a new timer for every command (and leaves the old one in the loop's
    heap, cancelled); a maild session sets one, and another only when it fires early."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as connection:
        assert connection.recv(4096).startswith(b"220")
        for _ in range(90):
            assert _command(connection, b"NOOP\r\n").startswith(b"250")
        assert server.session_timers == 1
        time.sleep(TIMEOUT * 0.6)
        assert _command(connection, b"NOOP\r\n").startswith(b"250")
        _closed_at(connection)
    # The first timer fired before the deadline the last NOOP set, and set a second.
    assert server.session_timers == 2
