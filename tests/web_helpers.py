"""A daemon with its web on, a relay sink, users, and a Chromium driven by Playwright."""

from __future__ import annotations

import os
import shutil
import smtplib
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, skip_or_fail
from tests.daemon_helpers import RunningMaild, free_port, make_daemon, wait_until
from tests.sink import RecordingSink

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
PASSWORD = "ett-langt-losenord"


@dataclass
class WebMaild:
    """A running daemon with its web address and a copy of the rules it may edit."""

    daemon: RunningMaild
    base: str
    rules: Path

    def send(self, message: EmailMessage) -> None:
        """Deliver `message` to the daemon's SMTP listener."""
        with smtplib.SMTP("127.0.0.1", self.daemon.smtp_port, timeout=30) as client:
            client.send_message(message)

    def ticket_of(self, message_id: str) -> str:
        """The ticket number the message with `message_id` got (waits for processing)."""
        wait_until(lambda: bool(self.daemon.query(
            "SELECT t.number FROM ticket t JOIN inbound i ON i.ticket_id = t.id "
            f"WHERE i.message_id = '{message_id}'")), what=f"a ticket for {message_id}")
        return str(self.daemon.query(
            "SELECT t.number FROM ticket t JOIN inbound i ON i.ticket_id = t.id "
            f"WHERE i.message_id = '{message_id}'")[0][0])


def maild_cli(cwd: Path, env: dict[str, str], *args: str, stdin: str = "") -> None:
    """Run `maild ARGS` in the daemon's directory; fails the test when it fails."""
    done = subprocess.run([sys.executable, "-m", "maild.cli", *args], cwd=cwd, env=env,
                          input=stdin, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr


def mail(sender: str, subject: str, body: str, message_id: str,
         to: str = "support@example.se") -> EmailMessage:
    """A plain customer mail."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = f"<{message_id}>"
    message.set_content(body)
    return message


@contextmanager
def running_web(tmp_path: Path, relay_port: int,
                env: dict[str, str] | None = None) -> Iterator[WebMaild]:
    """maild run with [http] listen on loopback, relaying to `relay_port`; users agnes, root."""
    rules = tmp_path / "rules"
    shutil.copytree(ROOT / "rules", rules)
    http_port = free_port()
    daemon = make_daemon(tmp_path, rules=rules, env={
        "MAILD_HTTP_LISTEN": f"127.0.0.1:{http_port}",
        "MAILD_OUTBOX_TRANSPORT": "smtp", "MAILD_OUTBOX_RELAY_HOST": "127.0.0.1",
        "MAILD_OUTBOX_RELAY_PORT": str(relay_port), "MAILD_OUTBOX_RELAY_SECURITY": "none",
        "MAILD_MAIL_DOMAIN": "example.se", **(env or {})})
    maild_cli(daemon.cwd, daemon.env, "user", "add", "agnes", "--role", "agent",
              "--queues", "web", "--password-stdin", stdin=PASSWORD + "\n")
    maild_cli(daemon.cwd, daemon.env, "user", "add", "root", "--role", "admin",
              "--password-stdin", stdin=PASSWORD + "\n")
    daemon.start()
    wait_until(lambda: _listening(http_port), what="the web listener")
    try:
        yield WebMaild(daemon=daemon, base=f"http://127.0.0.1:{http_port}", rules=rules)
    finally:
        daemon.stop()


@pytest.fixture
def web_maild(tmp_path: Path, sink: tuple[RecordingSink, int]) -> Iterator[WebMaild]:
    """A daemon with its web on (see `running_web`)."""
    with running_web(tmp_path, sink[1]) as web:
        yield web


def _listening(port: int) -> bool:
    from tests.daemon_helpers import listening

    return listening(port)


@pytest.fixture
def browser() -> Iterator[Any]:
    """A headless Debian Chromium under Playwright (never a downloaded browser)."""
    if not CHROMIUM.exists():
        skip_or_fail("Debian's chromium is not installed (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        skip_or_fail("playwright for Python is not installed (pip install playwright)")
        raise
    os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield instance
        finally:
            instance.close()


def log_in(browser: Any, base: str, name: str) -> Any:
    """A new page, logged in as `name`; it records every dialog a script opens."""
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    page.dialogs = []
    page.on("dialog", lambda dialog: (page.dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(f"{base}/login")
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/queues")
    return page
