"""IMAP intake: fetch new messages from a mailbox folder, store them, then mark or move them.

One poller serves one folder of one account, in its own thread (imapclient is
blocking, and imported only once a poller runs: a daemon without IMAP mailboxes
does not load it). It remembers the folder's UIDVALIDITY and the last UID it stored,
so nothing is fetched twice or skipped, messages a person already read
included. The order is: store (committed), then act on the server (\\Seen,
move or delete), then advance the cursor; a crash anywhere in between re-fetches
the message, which intake recognises as already stored: no duplicate.

With several maild instances on one database, one poller polls a folder at a
time: the one holding the folder's lease (`maild.cluster.lease`). It renews
the lease while it works; the others stand by and take over once a holder that
died has let it expire.
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
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine
from sqlmodel import Session

from maild.cluster.lease import NamedLease
from maild.config import ImapAccount
from maild.db import StorageError
from maild.intake import store_inbound
from maild.log import get_logger
from maild.models import ImapCursor, utcnow

if TYPE_CHECKING:
    from imapclient import IMAPClient

log = get_logger("maild.imap")

# RFC 2177 asks to re-issue IDLE well before 29 minutes. A minute also bounds how
# long a message can wait whose arrival the server announced (EXISTS) in the reply
# to another command rather than during IDLE; each renewal looks for new mail.
IDLE_RENEW_SECONDS = 60.0
FIRST_BACKOFF = 1.0
LONGEST_BACKOFF = 300.0
LEASE_SECONDS = 10.0    # a dead poller's folder is taken over this long after its last renewal
RENEW_SECONDS = 3.0     # how often the polling instance renews its lease
STANDBY_SECONDS = 2.0   # how often a standing-by instance tries to take the lease


class LeadershipLost(Exception):
    """Another instance holds this folder's lease now: stop polling it."""


class ImapAuthError(Exception):
    """The credentials could not be read or were refused."""


@dataclass
class PollerHealth:
    """How polling one folder is going: what the daemon's status and metrics show."""

    account: str
    folder: str
    last_success: datetime | None = None
    failures: int = 0                 # consecutive failed sessions since the last good one
    last_error: str | None = None
    login_refused: bool = False       # the last failure was the credentials, not the network

    def succeeded(self) -> None:
        """Record a completed fetch pass."""
        self.last_success = utcnow()
        self.failures = 0
        self.last_error = None
        self.login_refused = False

    def failed(self, error: str, *, login: bool) -> None:
        """Record a failed session (`login`: the credentials were unreadable or refused)."""
        self.failures += 1
        self.last_error = error
        self.login_refused = login

    def problem(self) -> str | None:
        """One line for the daemon's status while this folder cannot be polled, else None."""
        if not self.failures:
            return None
        what = "login refused" if self.login_refused else "cannot poll"
        return (f"imap {self.account}/{self.folder}: {what} "
                f"({self.failures} time{'s' if self.failures != 1 else ''})")


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
            return "oauth2", _token_from_command(account)
    except (OSError, subprocess.SubprocessError) as error:
        raise ImapAuthError(f"cannot read the credentials of {account.name}: {error}") from error
    raise ImapAuthError(f"no credentials configured for {account.name}")


def _token_from_command(account: ImapAccount) -> str:
    """The access token the account's token command prints; its failure says why, in one line."""
    command = account.oauth2_token_command or ""
    done = subprocess.run(shlex.split(command),  # noqa: S603 - the admin's own command
                          capture_output=True, text=True, timeout=60, check=False)
    if done.returncode != 0:
        said = " ".join(done.stderr.split())[-300:] or "nothing on standard error"
        raise ImapAuthError(f"cannot read the credentials of {account.name}: the token command "
                            f"exited with {done.returncode}: {said}")
    token = done.stdout.strip()
    if not token:
        raise ImapAuthError(f"cannot read the credentials of {account.name}: the token command "
                            f"printed no token")
    return token


class FolderPoller:
    """Fetches one folder of one account until told to stop, reconnecting after errors."""

    def __init__(self, account: ImapAccount, folder: str, engine: Engine, *,
                 recipients: list[str], on_stored: Callable[[], None],
                 stop: threading.Event,
                 on_health: Callable[[PollerHealth], None] = lambda health: None,
                 lease: NamedLease | None = None) -> None:
        self.account = account
        self.folder = folder
        self.engine = engine
        self.last_success: float | None = None  # Unix time of the last complete fetch (metrics)
        self.recipients = recipients
        self.on_stored = on_stored
        self.stop = stop
        self.log = log.bind(account=account.name, folder=folder)
        self.client: IMAPClient | None = None
        self.health = PollerHealth(account=account.name, folder=folder)
        self.on_health = on_health
        self.lease = lease
        self._renewed = 0.0

    # -- connection ---------------------------------------------------------------------
    def _ssl_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(
            cafile=str(self.account.ca_file) if self.account.ca_file else None)
        return context

    def connect(self) -> IMAPClient:
        """A logged-in client with the folder selected."""
        from imapclient import IMAPClient
        from imapclient.exceptions import LoginError

        account = self.account
        client = IMAPClient(account.host, port=account.port, ssl=account.security == "tls",
                            ssl_context=self._ssl_context() if account.security == "tls" else None,
                            timeout=30)
        try:
            if account.security == "starttls":
                client.starttls(self._ssl_context())
            kind, secret = read_secret(account)
            try:
                if kind == "oauth2":
                    client.oauth2_login(account.user, secret)
                else:
                    client.login(account.user, secret)
            except LoginError as error:
                mechanism = "XOAUTH2" if kind == "oauth2" else "LOGIN"
                raise ImapAuthError(f"{account.host} refused the {mechanism} login of "
                                    f"{account.user}: {error}") from error
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
            self.keep_lease()
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
            waited_until = time.monotonic() + self.account.poll_interval
            while not self.stop.is_set() and time.monotonic() < waited_until:
                self.keep_lease()
                self.stop.wait(min(RENEW_SECONDS, max(0.0, waited_until - time.monotonic())))
            return
        client.idle()
        started = time.monotonic()
        try:
            while not self.stop.is_set() and time.monotonic() - started < IDLE_RENEW_SECONDS:
                self.keep_lease()
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

    # -- leadership -------------------------------------------------------------------------
    def keep_lease(self) -> None:
        """Renew this folder's lease every RENEW_SECONDS; raise LeadershipLost if it was lost."""
        if self.lease is None or time.monotonic() - self._renewed < RENEW_SECONDS:
            return
        if not self.lease.acquire():
            raise LeadershipLost(f"another instance polls this folder now "
                                 f"({self.lease.current_holder() or 'unknown'})")
        self._renewed = time.monotonic()

    def take_lead(self, standing_by: bool) -> bool:
        """Try to become the folder's poller; False (after waiting a moment) while another is."""
        if self.lease is None:
            return True
        if self.lease.acquire():
            self._renewed = time.monotonic()
            self.log.info("imap.leading", lease=self.lease.name, holder=self.lease.holder)
            return True
        if not standing_by:
            self.log.info("imap.standing_by", lease=self.lease.name,
                          holder=self.lease.current_holder())
        self.stop.wait(STANDBY_SECONDS)
        return False

    def release(self) -> None:
        """Give up the folder's lease on a clean stop, so another instance takes over at once."""
        if self.lease is not None and self.lease.held_until is not None:
            try:
                self.lease.release()
            except Exception as error:  # the lease then simply expires
                self.log.warning("imap.release_failed", error=f"{type(error).__name__}: {error}")

    # -- the loop ---------------------------------------------------------------------------
    def run(self) -> None:
        """Fetch, wait, fetch ... until `stop`; reconnect with backoff and jitter after errors."""
        try:
            self._run()
        finally:
            self.release()

    def _run(self) -> None:
        from imapclient.exceptions import IMAPClientError  # loaded by the pollers that run

        backoff = FIRST_BACKOFF
        standing_by = False
        while not self.stop.is_set():
            try:
                if not self.take_lead(standing_by):
                    standing_by = True
                    continue
                standing_by = False
                self.client = self.connect()
                self.log.info("imap.connected", host=self.account.host,
                              idle=self.client.has_capability("IDLE"))
                backoff = FIRST_BACKOFF
                while not self.stop.is_set():
                    # Mail that arrived while a pass fetched and deleted was announced in
                    # the replies to those commands, not during the IDLE that follows: so
                    # a pass that stored anything is followed by another at once.
                    while self.fetch_new(self.client) and not self.stop.is_set():
                        pass
                    if self.health.failures or self.health.last_success is None:
                        self.health.succeeded()
                        self.on_health(self.health)
                    else:
                        self.health.succeeded()
                    self.wait_for_mail(self.client)
            except LeadershipLost as error:
                self.log.warning("imap.lease_lost", error=str(error))
                continue
            except ImapAuthError as error:
                # Loud on every failure: a mailbox nobody polls is the failure users of other
                # help desks find last.
                self.health.failed(str(error), login=True)
                self.log.error("imap.auth_failed", error=str(error),
                               failures=self.health.failures, retry_in=round(backoff, 1))
            except StorageError as error:
                self.health.failed(str(error), login=False)
                self.log.error("imap.store_failed", error=str(error),
                               retry_in=round(backoff, 1))
            except (IMAPClientError, OSError, ssl.SSLError) as error:
                self.health.failed(f"{type(error).__name__}: {error}", login=False)
                self.log.warning("imap.disconnected", error=f"{type(error).__name__}: {error}",
                                 failures=self.health.failures, retry_in=round(backoff, 1))
            except Exception as error:
                self.health.failed(f"{type(error).__name__}: {error}", login=False)
                self.log.error("imap.error", error=f"{type(error).__name__}: {error}",
                               retry_in=round(backoff, 1))
            finally:
                if self.client is not None:
                    _logout(self.client)
                    self.client = None
            if self.health.failures:
                self.on_health(self.health)
            if self.stop.wait(backoff * random.uniform(0.8, 1.2)):  # noqa: S311 - jitter
                break
            backoff = min(backoff * 2, LONGEST_BACKOFF)


def _announces_mail(response: Any) -> bool:
    return isinstance(response, tuple) and len(response) >= 2 and response[1] in (
        b"EXISTS", b"RECENT")


def _logout(client: IMAPClient) -> None:
    with contextlib.suppress(Exception):  # the connection may already be gone
        client.logout()
