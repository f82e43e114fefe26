"""Running the real `maild run` on loopback for tests, and looking at what it stored."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, skip_or_fail

# Each stored message's bytes, wherever they are kept (`maild.bytes_apart`), in id order.
STORED_BYTES_SQL = ("SELECT coalesce(inbound_raw.raw, inbound.raw) FROM inbound "
                    "LEFT JOIN inbound_raw ON inbound_raw.inbound_id = inbound.id "
                    "ORDER BY inbound.id")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(condition: Callable[[], bool], timeout: float = 10.0, what: str = "",
               log: Callable[[], str] | None = None) -> None:
    """Poll `condition` until it holds; fail the test after `timeout` seconds (with `log`)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    tail = "\n".join(log().splitlines()[-30:]) if log is not None else ""
    pytest.fail(f"timed out after {timeout}s waiting for {what or condition}\n{tail}")


def log_events(log: str, name: str) -> list[dict[str, Any]]:
    """The JSON log events called `name` in `log`, in order; other lines are skipped."""
    found = []
    for line in log.splitlines():
        if f'"{name}"' not in line:
            continue
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict) and event.get("event") == name:
            found.append(event)
    return found


def listening(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something accepts connections on host:port."""
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


def self_signed_certificate(directory: Path, name: str = "localhost") -> tuple[Path, Path]:
    """A fresh self-signed certificate and key for `name` (and 127.0.0.1), made with openssl."""
    if shutil.which("openssl") is None:
        skip_or_fail("openssl is not installed (apt-get install openssl)")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", f"/CN={name}", "-addext", f"subjectAltName=DNS:{name},IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60)
    return cert, key


@dataclass
class RunningMaild:
    """A `maild run` process in its own working directory."""

    cwd: Path
    args: list[str]
    env: dict[str, str]
    smtp_port: int
    process: subprocess.Popen[bytes] | None = None
    log_path: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log_path = self.cwd / "maild.log"

    def start(self, wait_for: int | None = None) -> None:
        """Start the daemon and wait until it listens on `wait_for` (default: its SMTP port)."""
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "maild.cli", *self.args], cwd=self.cwd, env=self.env,
            stdout=log, stderr=log)
        port = wait_for or self.smtp_port
        deadline = time.monotonic() + 20
        while not listening(port):
            if self.process.poll() is not None:
                pytest.fail(f"maild run exited with {self.process.returncode}:\n{self.log()}")
            if time.monotonic() > deadline:
                pytest.fail(f"maild run did not listen on {port}:\n{self.log()}")
            time.sleep(0.05)

    def log(self) -> str:
        """Everything the daemon logged so far."""
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def signal(self, signum: int) -> None:
        assert self.process is not None
        self.process.send_signal(signum)

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM and wait; returns the exit code."""
        if self.process is None:
            return 0
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            pytest.fail(f"maild did not stop within {timeout}s:\n{self.log()}")
        return code

    def kill(self) -> None:
        """SIGKILL: no drain, no clean-up, as a crash."""
        assert self.process is not None
        self.process.kill()
        self.process.wait()

    def events(self, name: str) -> list[dict[str, Any]]:
        """The daemon's JSON log events called `name`, in order."""
        return log_events(self.log(), name)

    def query(self, sql: str) -> list[tuple[object, ...]]:
        """Rows of `sql` on the daemon's SQLite database."""
        with sqlite3.connect(self.cwd / "var" / "maild.db", timeout=10) as connection:
            return connection.execute(sql).fetchall()

    def count(self, table: str, where: str = "1=1") -> int:
        return int(self.query(f"SELECT count(*) FROM {table} WHERE {where}")[0][0])


def make_daemon(tmp_path: Path, *extra: str, env: dict[str, str] | None = None,
                rules: Path | None = None) -> RunningMaild:
    """A daemon (not yet started) on a free SMTP port, with its own data directory."""
    work = tmp_path / "daemon"
    work.mkdir(exist_ok=True)
    if not (work / "rules").exists():
        (work / "rules").symlink_to(rules or ROOT / "rules")
    port = free_port()
    environment = {key: value for key, value in os.environ.items()
                   if not key.startswith(("MAILD_", "NOTIFY_SOCKET", "WATCHDOG_"))}
    environment.update({"MAILD_LOG_FORMAT": "json", "MAILD_DAEMON_WORKER_INTERVAL": "0.2",
                        "PYTHONPATH": str(ROOT)})
    environment.update(env or {})
    return RunningMaild(cwd=work, args=["run", "--smtp", f"127.0.0.1:{port}", *extra],
                        env=environment, smtp_port=port)
