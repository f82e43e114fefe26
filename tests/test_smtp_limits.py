"""SMTP as an attacker sees it: connection limits, idle clients, AUTH and a second STARTTLS."""

from __future__ import annotations

import smtplib
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.daemon_helpers import RunningMaild, make_daemon, self_signed_certificate, wait_until
from tests.mailmaker import support_mail

LIMITS = {"MAILD_SMTP_MAX_CONNECTIONS": "5", "MAILD_SMTP_MAX_CONNECTIONS_PER_CLIENT": "3",
          "MAILD_SMTP_TIMEOUT": "3"}


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[RunningMaild]:
    running = make_daemon(tmp_path, env=LIMITS)
    running.start()
    yield running
    running.stop()


def _connect(port: int, source: str = "127.0.0.1") -> tuple[socket.socket, bytes]:
    """A raw connection from loopback address `source`, with the server's first line."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(source, 0))
    return sock, sock.makefile("rb").readline()


def test_connections_over_the_per_client_limit_get_421_and_intake_goes_on(
        daemon: RunningMaild) -> None:
    idle = [_connect(daemon.smtp_port) for _ in range(3)]
    assert all(greeting.startswith(b"220") for _, greeting in idle)
    refused = [_connect(daemon.smtp_port) for _ in range(4)]
    assert all(greeting.startswith(b"421 4.7.0") for _, greeting in refused)
    assert all(sock.recv(10) == b"" for sock, _ in refused), "a refused connection is closed"
    # Another client still gets in while this one holds its limit.
    with smtplib.SMTP("127.0.0.1", daemon.smtp_port, source_address=("127.0.0.2", 0)) as client:
        assert client.sendmail("anna.lind@bergstromsbygg.se", ["support@example.se"],
                               support_mail()) == {}
    # Four refusals, one log line that counts them.
    wait_until(lambda: bool(daemon.events("smtp.connection_refused")), what="refusal logged")
    assert len(daemon.events("smtp.connection_refused")) == 1
    # A closed connection frees its place.
    idle[0][0].close()
    wait_until(lambda: _connect(daemon.smtp_port)[1].startswith(b"220"), what="a free place")
    for sock, _ in idle[1:] + refused:
        sock.close()


def test_connections_over_the_total_limit_get_421(daemon: RunningMaild) -> None:
    held = [_connect(daemon.smtp_port, f"127.0.0.{1 + index // 3}") for index in range(5)]
    assert all(greeting.startswith(b"220") for _, greeting in held)
    sock, greeting = _connect(daemon.smtp_port, "127.0.0.9")
    assert greeting.startswith(b"421")
    for each, _ in [*held, (sock, b"")]:
        each.close()


def test_an_idle_client_is_disconnected(daemon: RunningMaild) -> None:
    sock, greeting = _connect(daemon.smtp_port)
    assert greeting.startswith(b"220")
    sock.settimeout(30)
    rest = sock.makefile("rb").read()  # returns once the server closes the connection
    assert b"421" in rest or rest == b""
    sock.close()


def test_auth_is_not_implemented(daemon: RunningMaild) -> None:
    with smtplib.SMTP("127.0.0.1", daemon.smtp_port) as client:
        client.ehlo()
        assert not client.has_extn("auth")
        code, text = client.docmd("AUTH", "PLAIN AGFubmEAc2VjcmV0")
        assert (code, text[:5]) == (502, b"5.5.1")
        code, _ = client.docmd("AUTH", "LOGIN")
        assert code == 502
        assert client.noop()[0] == 250, "the session goes on"


def test_second_starttls_inside_tls_is_out_of_sequence(tmp_path: Path) -> None:
    cert, key = self_signed_certificate(tmp_path)
    running = make_daemon(tmp_path, env={"MAILD_SMTP_TLS_CERT": str(cert),
                                         "MAILD_SMTP_TLS_KEY": str(key)})
    running.start()
    try:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        with smtplib.SMTP("127.0.0.1", running.smtp_port) as client:
            client.starttls(context=context)
            client.ehlo()
            code, text = client.docmd("STARTTLS")
            assert code == 503, text
            code, _ = client.docmd("AUTH", "PLAIN AGFubmEAc2VjcmV0")
            assert code == 502
            assert client.sendmail("anna.lind@bergstromsbygg.se", ["support@example.se"],
                                   support_mail()) == {}
    finally:
        running.stop()
