"""IMAP intake: fetch new messages from a mailbox folder, store them, then mark or move them.

One poller serves one folder of one account, in its own thread (imapclient is
blocking). It remembers the folder's UIDVALIDITY and the last UID it stored,
so nothing is fetched twice or skipped, messages a person already read
included. The order is: store (committed), then act on the server (\\Seen,
move or delete), then advance the cursor; a crash anywhere in between re-fetches
the message, which intake recognises as already stored: no duplicate.
"""

from __future__ import annotations

import contextlib
import random
import shlex
import ssl
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError
from sqlalchemy import Engine
from sqlmodel import Session

from maild.config import ImapAccount
from maild.db import StorageError
from maild.intake import store_inbound
from maild.log import get_logger
from maild.models import ImapCursor, utcnow

log = get_logger("maild.imap")

IDLE_RENEW_SECONDS = 9 * 60  # RFC 2177: re-issue IDLE well before 29 minutes
FIRST_BACKOFF = 1.0
LONGEST_BACKOFF = 300.0


class ImapAuthError(Exception):
    """The credentials could not be read or were refused."""


@dataclass
class Cursor:
    """Where a folder was left: its UIDVALIDITY and the last UID stored."""

    uidvalidity: int
    last_uid: int


def load_cursor(engine: Engine, account: str, folder: str) -> Cursor | None:
    """The saved cursor of `account`/`folder`, if any."""
    with Session(engine) as session:
        row = session.get(ImapCursor, (account, folder))
        return Cursor(row.uidvalidity, row.last_uid) if row else None


def save_cursor(engine: Engine, account: str, folder: str, cursor: Cursor) -> None:
    """Commit the cursor of `account`/`folder`."""
    with Session(engine) as session:
        row = session.get(ImapCursor, (account, folder))
        if row is None:
            row = ImapCursor(account=account, folder=folder, uidvalidity=cursor.uidvalidity,
                             last_uid=cursor.last_uid, updated_at=utcnow())
        row.uidvalidity, row.last_uid, row.updated_at = (cursor.uidvalidity, cursor.last_uid,
                                                         utcnow())
        session.add(row)
        session.commit()


def read_secret(account: ImapAccount) -> tuple[str, str]:
    """("password" or "oauth2", the secret) from the configured source, read at each login."""
    try:
        if account.password:
            return "password", account.password
        if account.password_file:
            return "password", account.password_file.read_text(encoding="utf-8").strip()
        if account.oauth2_token_file:
            return "oauth2", account.oauth2_token_file.read_text(encoding="utf-8").strip()
        if account.oauth2_token_command:
            done = subprocess.run(shlex.split(account.oauth2_token_command),  # noqa: S603
                                  capture_output=True, text=True, timeout=60, check=True)
            return "oauth2", done.stdout.strip()
    except (OSError, subprocess.SubprocessError) as error:
        raise ImapAuthError(f"cannot read the credentials of {account.name}: {error}") from error
    raise ImapAuthError(f"no credentials configured for {account.name}")


class FolderPoller:
    """Fetches one folder of one account until told to stop, reconnecting after errors."""

    def __init__(self, account: ImapAccount, folder: str, engine: Engine, *,
                 recipients: list[str], on_stored: Callable[[], None],
                 stop: threading.Event) -> None:
        self.account = account
        self.folder = folder
        self.engine = engine
        self.last_success: float | None = None  # Unix time of the last complete fetch (metrics)
        self.recipients = recipients
        self.on_stored = on_stored
        self.stop = stop
        self.log = log.bind(account=account.name, folder=folder)
        self.client: IMAPClient | None = None

    # -- connection ---------------------------------------------------------------------
    def _ssl_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(
            cafile=str(self.account.ca_file) if self.account.ca_file else None)
        return context

    def connect(self) -> IMAPClient:
        """A logged-in client with the folder selected."""
        account = self.account
        client = IMAPClient(account.host, port=account.port, ssl=account.security == "tls",
                            ssl_context=self._ssl_context() if account.security == "tls" else None,
                            timeout=30)
        try:
            if account.security == "starttls":
                client.starttls(self._ssl_context())
            kind, secret = read_secret(account)
            if kind == "oauth2":
                client.oauth2_login(account.user, secret)
            else:
                client.login(account.user, secret)
            client.select_folder(self.folder)
        except Exception:
            _logout(client)
            raise
        return client

    # -- one pass -------------------------------------------------------------------------
    def fetch_new(self, client: IMAPClient) -> int:
        """Store every message after the cursor, in UID order and in batches; returns how many."""
        status = client.folder_status(self.folder, ["UIDVALIDITY"])
        uidvalidity = int(status[b"UIDVALIDITY"])
        cursor = load_cursor(self.engine, self.account.name, self.folder)
        if cursor is None or cursor.uidvalidity != uidvalidity:
            if cursor is not None:
                self.log.warning("imap.uidvalidity_changed", old=cursor.uidvalidity,
                                 new=uidvalidity)
            cursor = Cursor(uidvalidity, 0)
            save_cursor(self.engine, self.account.name, self.folder, cursor)
        uids = sorted(uid for uid in client.search(["UID", f"{cursor.last_uid + 1}:*"])
                      if uid > cursor.last_uid)
        stored = 0
        for start in range(0, len(uids), self.account.batch_size):
            if self.stop.is_set():
                break
            batch = uids[start:start + self.account.batch_size]
            messages = client.fetch(batch, ["BODY.PEEK[]"])
            for uid in batch:
                body = messages.get(uid, {}).get(b"BODY[]")
                if not isinstance(body, bytes):
                    self.log.error("imap.fetch_failed", uid=uid,
                                   reason="the server returned no body; left on the server")
                else:
                    self._store_one(client, uid, uidvalidity, body)
                    stored += 1
                cursor.last_uid = uid
                save_cursor(self.engine, self.account.name, self.folder, cursor)
        return stored

    def _store_one(self, client: IMAPClient, uid: int, uidvalidity: int, raw: bytes) -> None:
        source = f"imap {self.account.name} {self.folder} uidvalidity {uidvalidity} uid {uid}"
        result = store_inbound(self.engine, raw, transport="imap", recipients=self.recipients,
                               source=source)  # raises StorageError: nothing is acted on
        self.on_stored()
        self.after_commit(client, uid)
        self.log.info("imap.stored", uid=uid, inbound_id=result.inbound_id,
                      duplicate=result.duplicate, action=self.account.after)

    def after_commit(self, client: IMAPClient, uid: int) -> None:
        """Mark, move or delete message `uid` on the server, as configured."""
        action = self.account.after
        if action == "seen":
            client.add_flags([uid], [b"\\Seen"])
        elif action == "move":
            target = self.account.move_to or "Processed"
            if not client.folder_exists(target):
                client.create_folder(target)
            if client.has_capability("MOVE"):
                client.move([uid], target)
            else:
                client.copy([uid], target)
                self._delete(client, uid)
        else:
            self._delete(client, uid)

    def _delete(self, client: IMAPClient, uid: int) -> None:
        client.add_flags([uid], [b"\\Deleted"])
        if client.has_capability("UIDPLUS"):
            client.uid_expunge([uid])
        else:
            client.expunge()

    # -- waiting ------------------------------------------------------------------------
    def wait_for_mail(self, client: IMAPClient) -> None:
        """Return when new mail may be there: IDLE where offered, else after the poll interval."""
        if not client.has_capability("IDLE"):
            self.stop.wait(self.account.poll_interval)
            return
        client.idle()
        started = time.monotonic()
        try:
            while not self.stop.is_set() and time.monotonic() - started < IDLE_RENEW_SECONDS:
                responses = client.idle_check(timeout=1)
                for response in responses:
                    if isinstance(response, tuple) and response and response[0] == b"BYE":
                        # The server is going away; imapclient would go on returning nothing
                        # from the dead connection until the IDLE renewal.
                        said = b" ".join(part for part in response[1:] if isinstance(part, bytes))
                        raise ConnectionResetError(
                            f"the server ended the session: {said.decode(errors='replace')}")
                if any(_announces_mail(response) for response in responses):
                    return
        finally:
            with contextlib.suppress(Exception):  # the connection may be gone (BYE)
                client.idle_done()

    # -- the loop ---------------------------------------------------------------------------
    def run(self) -> None:
        """Fetch, wait, fetch ... until `stop`; reconnect with backoff and jitter after errors."""
        backoff = FIRST_BACKOFF
        while not self.stop.is_set():
            try:
                self.client = self.connect()
                self.log.info("imap.connected", host=self.account.host,
                              idle=self.client.has_capability("IDLE"))
                backoff = FIRST_BACKOFF
                while not self.stop.is_set():
                    self.fetch_new(self.client)
                    self.last_success = time.time()
                    self.wait_for_mail(self.client)
            except StorageError as error:
                self.log.error("imap.store_failed", error=str(error),
                               retry_in=round(backoff, 1))
            except (IMAPClientError, OSError, ssl.SSLError, ImapAuthError) as error:
                self.log.warning("imap.disconnected", error=f"{type(error).__name__}: {error}",
                                 retry_in=round(backoff, 1))
            except Exception as error:
                self.log.error("imap.error", error=f"{type(error).__name__}: {error}",
                               retry_in=round(backoff, 1))
            finally:
                if self.client is not None:
                    _logout(self.client)
                    self.client = None
            if self.stop.wait(backoff * random.uniform(0.8, 1.2)):  # noqa: S311 - jitter
                break
            backoff = min(backoff * 2, LONGEST_BACKOFF)


def _announces_mail(response: Any) -> bool:
    return isinstance(response, tuple) and len(response) >= 2 and response[1] in (
        b"EXISTS", b"RECENT")


def _logout(client: IMAPClient) -> None:
    with contextlib.suppress(Exception):  # the connection may already be gone
        client.logout()
