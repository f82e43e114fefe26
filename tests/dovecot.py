"""A real Dovecot IMAP server for tests on a loopback port, everything in a temporary directory.

`DovecotServer` writes its own configuration, users, Maildirs, logs, sockets and
(optionally) a throw-away CA and server certificate into a fresh directory,
runs `dovecot -F -c <that config>` and never reads or changes /etc/dovecot or
the system's Dovecot service.  The fixtures `dovecot` (plaintext IMAP, STARTTLS
not offered) and `dovecot_tls` (STARTTLS on `port`, implicit TLS on `tls_port`)
give each test a fresh server and always stop it afterwards.

Running as root (how CI runs): Dovecot refuses mail access as uid 0 ("Mail
access not allowed for root"), so the mail processes run as the unprivileged
`dovecot` user that the Debian package creates (`nobody` if it is missing),
which then owns the Maildirs; the login processes run as `dovenull`.  Running
as any other user, every Dovecot process runs as that user and owns the mail.
"""

from __future__ import annotations

import atexit
import contextlib
import grp
import os
import pwd
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import NamedTuple, Self

import pytest
from imapclient import IMAPClient

from tests.token_endpoint import TokenEndpoint

HOST = "127.0.0.1"
USERS: dict[str, str] = {
    "support@example.se": "support-secret",
    "teknik@example.se": "teknik-secret",
}
NOT_INSTALLED = "Dovecot is not installed (apt-get install dovecot-imapd)"
START_TIMEOUT = 10.0
STOP_TIMEOUT = 5.0
_SBIN_DIRS = ("/usr/sbin", "/usr/local/sbin", "/sbin")
_APPENDUID = re.compile(rb"\[APPENDUID \d+ (\d+)\]")


class Message(NamedTuple):
    """One stored message: its UID, its flags (without \\Recent) and its exact bytes."""

    uid: int
    flags: tuple[str, ...]
    raw: bytes


# The process that runs `dovecot -F ...` as its child.  As the server's "child
# subreaper" (Linux 3.4+) it reaps every process of the server, including children
# orphaned when the master exits, so no zombie is left to a PID 1 that may never reap
# it (as in many containers).  It ignores the SIGTERM sent to the process group,
# stops the server and removes its directory (argv[1]) if the test process dies
# (so the Python thread that started it must live as long as the server), and exits
# with the master's status once no descendant is left.
_REAPER = """\
import ctypes, os, signal, sys
parent = os.getppid()
signal.signal(signal.SIGTERM, lambda signo, frame: None)
signal.signal(signal.SIGHUP, lambda signo, frame: os.killpg(0, signal.SIGTERM))
try:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    libc.prctl(1, int(signal.SIGHUP), 0, 0, 0)  # PR_SET_PDEATHSIG
except (AttributeError, OSError):
    pass
if os.getppid() != parent:
    sys.exit(1)
master = os.fork()
if master == 0:
    os.execv(sys.argv[2], sys.argv[2:])
code = 0
while True:
    try:
        pid, status = os.wait()
    except ChildProcessError:
        break
    if pid == master:
        code = os.waitstatus_to_exitcode(status)
if os.getppid() != parent:
    import shutil
    shutil.rmtree(sys.argv[1], ignore_errors=True)
sys.exit(code if code >= 0 else 128 - code)
"""


def dovecot_binary() -> str | None:
    """The path of the `dovecot` master binary, also looked for in sbin directories, or None."""
    search = os.pathsep.join([os.environ.get("PATH", ""), *_SBIN_DIRS])
    return shutil.which("dovecot", path=search)


def require_dovecot() -> str:
    """The `dovecot` binary; skips the test without it, or fails if MAILD_REQUIRE_SERVICES=1."""
    binary = dovecot_binary()
    if binary is None:
        if os.environ.get("MAILD_REQUIRE_SERVICES") == "1":
            pytest.fail(f"required service missing: {NOT_INSTALLED}")
        pytest.skip(NOT_INSTALLED)
    return binary


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


def _existing_user(*names: str) -> pwd.struct_passwd:
    """The first of `names` that exists as a system user."""
    for name in names:
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    raise RuntimeError(f"none of the users {', '.join(names)} exists on this machine")


def _group_name(gid: int) -> str:
    """The name of group `gid`."""
    return grp.getgrgid(gid).gr_name


_OPENSSL_CNF = """\
[req]
distinguished_name = dn
prompt = no
[dn]
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
"""


def make_certificates(directory: Path) -> tuple[Path, Path, Path]:
    """Writes a new test CA and a server certificate for 127.0.0.1/localhost signed by it.

    Uses the `openssl` command (a dependency of dovecot-core) with EC P-256 keys,
    valid for two days; returns the paths (ca.pem, server.pem, server.key).
    """
    openssl = shutil.which("openssl")
    if openssl is None:
        raise RuntimeError("the openssl command is needed for the TLS test server")
    directory.mkdir(parents=True, exist_ok=True)
    cnf, ca, ca_key = directory / "openssl.cnf", directory / "ca.pem", directory / "ca.key"
    cert, key, csr = directory / "server.pem", directory / "server.key", directory / "server.csr"
    cnf.write_text(_OPENSSL_CNF, "ascii")
    new_key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    commands = [
        [openssl, "req", "-x509", *new_key, "-config", str(cnf), "-extensions", "ca",
         "-subj", "/CN=maild test CA", "-days", "2", "-keyout", str(ca_key), "-out", str(ca)],
        [openssl, "req", "-new", *new_key, "-config", str(cnf),
         "-subj", "/CN=localhost", "-keyout", str(key), "-out", str(csr)],
        [openssl, "x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key),
         "-set_serial", str(int.from_bytes(os.urandom(8), "big")), "-days", "2",
         "-extfile", str(cnf), "-extensions", "server", "-out", str(cert)],
    ]
    for command in commands:
        done = subprocess.run(command, capture_output=True, check=False, timeout=30)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(command[:3])} failed: "
                               f"{done.stderr.decode('utf-8', 'replace')}")
    return ca, cert, key


_CERTIFICATES: dict[str, bytes] = {}


def _session_certificates(directory: Path) -> tuple[Path, Path, Path]:
    """Like make_certificates(), but the CA and certificate are made once per test session."""
    names = ("ca.pem", "server.pem", "server.key")
    if not _CERTIFICATES:
        made = make_certificates(directory)
        _CERTIFICATES.update((path.name, path.read_bytes()) for path in made)
        return made
    directory.mkdir(parents=True, exist_ok=True)
    paths = tuple(directory / name for name in names)
    for path in paths:
        path.write_bytes(_CERTIFICATES[path.name])
        path.chmod(0o600 if path.suffix == ".key" else 0o644)
    return paths[0], paths[1], paths[2]


class DovecotServer:
    """One Dovecot IMAP server on 127.0.0.1 with its configuration and mail in a private directory.

    Use it as a context manager (or call `start()` and `close()`): it is
    started on entry and always stopped, with its directory removed, on exit.
    Start it from a thread that outlives it (normally the main thread): the
    server stops by itself when the thread that started it ends.
    """

    def __init__(self, *, tls: bool = False, users: Mapping[str, str] | None = None,
                 binary: str | None = None, oauth2_introspection_url: str | None = None) -> None:
        """Prepares (does not start) a server; `users` maps login names to plaintext passwords.

        With `oauth2_introspection_url`, XOAUTH2 and OAUTHBEARER logins are offered too,
        and Dovecot asks that RFC 7662 token introspection endpoint about each token.
        """
        self.host = HOST
        self.tls = tls
        self.oauth2_introspection_url = oauth2_introspection_url
        self.users: dict[str, str] = dict(USERS if users is None else users)
        self.binary = binary or dovecot_binary() or "dovecot"
        self.port = 0
        self.tls_port: int | None = None
        self.directory = Path(tempfile.mkdtemp(prefix="maild-dovecot-"))
        self.config_path = self.directory / "dovecot.conf"
        self.log_path = self.directory / "dovecot.log"
        self.output_path = self.directory / "dovecot.out"
        self.passwd_path = self.directory / "passwd"
        self.mail_root = self.directory / "mail"
        self.ca_path: Path | None = None
        self.cert_path: Path | None = None
        self.key_path: Path | None = None
        self.start_seconds = 0.0
        self.stop_seconds = 0.0
        self._process: subprocess.Popen[bytes] | None = None  # the reaper, see _REAPER
        self._master_pid: int | None = None
        self._prepared = False
        atexit.register(self.close)

    # -- lifecycle ------------------------------------------------------------------------

    def __enter__(self) -> Self:
        """Starts the server, cleaning up fully if that fails."""
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        """Stops the server and removes its directory."""
        self.close()

    @property
    def process_group(self) -> int | None:
        """The process group (and session) id all of this server's processes run in, if started."""
        return None if self._process is None else self._process.pid

    @property
    def running(self) -> bool:
        """Whether the server is running (its reaper process, see _REAPER, is alive)."""
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        """Starts Dovecot (on the ports of its previous run, if any) and waits for its greeting.

        Raises RuntimeError, with the end of Dovecot's log, if it exits or does not
        answer within START_TIMEOUT seconds.
        """
        if self.running:
            return
        begin = time.monotonic()
        if not self._prepared:
            self._prepare()
        output = os.open(self.output_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-I", "-S", "-c", _REAPER, str(self.directory),
                 self.binary, "-F", "-c", str(self.config_path)],
                stdin=subprocess.DEVNULL, stdout=output, stderr=output,
                start_new_session=True, cwd=self.directory)
        finally:
            os.close(output)
        self._wait_until_ready(begin + START_TIMEOUT)
        self._master_pid = self._find_master(self._process)
        self.start_seconds = time.monotonic() - begin

    def stop(self) -> None:
        """Stops Dovecot as systemd does: SIGTERM to all its processes, SIGKILL after STOP_TIMEOUT.

        Signalling the whole process group ends IMAP sessions at once with "BYE
        Server shutting down".  Once all of the master's children have exited the
        master has nothing left to do but, at times, sleep a fixed second, so it is
        killed then.  Returns when every Dovecot process has exited and been reaped.
        """
        process, self._process = self._process, None
        master, self._master_pid = self._master_pid or self._find_master(process), None
        if process is None:
            return
        begin = time.monotonic()
        deadline = begin + STOP_TIMEOUT
        _signal_group(process.pid, signal.SIGTERM)  # the reaper itself ignores it
        signalled = time.monotonic()
        while process.poll() is None:
            now = time.monotonic()
            if now > deadline:
                _signal_group(process.pid, signal.SIGKILL)
                break
            children = None if master is None else _live_children(master)
            if master is not None and children == []:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(master, signal.SIGKILL)
                master = None
            elif children and now - signalled > 0.02:
                # The master may have respawned a child (anvil, log) that had already
                # exited before it handled its own SIGTERM; that one never got ours.
                for child in children:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(child, signal.SIGTERM)
                signalled = now
            time.sleep(0.002)
        process.wait(STOP_TIMEOUT)
        _signal_group(process.pid, signal.SIGKILL)  # only after a timeout could any be left
        # A master killed at the wrong moment leaves these behind; nothing uses them now.
        (self.directory / "run" / "master.pid").unlink(missing_ok=True)
        (self.directory / "state" / "instances.lock").unlink(missing_ok=True)
        self.stop_seconds = time.monotonic() - begin

    def restart(self) -> None:
        """Stops and starts Dovecot on the same ports; mailboxes, users and certificates stay."""
        self.stop()
        self.start()

    def close(self) -> None:
        """Stops the server and deletes its directory; safe to call more than once."""
        self.stop()
        atexit.unregister(self.close)
        shutil.rmtree(self.directory, ignore_errors=True)

    def log_text(self) -> str:
        """Everything Dovecot logged so far (master output, then the log file)."""
        parts = [path.read_text("utf-8", "replace")
                 for path in (self.output_path, self.log_path) if path.exists()]
        return "".join(parts)

    # -- IMAP helpers ----------------------------------------------------------------------

    def client(self, user: str | None = None, *, password: str | None = None,
               starttls: bool = False, implicit_tls: bool = False,
               timeout: float = 10.0) -> IMAPClient:
        """A new IMAPClient connection, logged in as `user` (with its password) when given.

        `starttls`/`implicit_tls` verify the server against this server's CA; the
        connection is a context manager that logs out on exit.
        """
        if implicit_tls:
            if self.tls_port is None:
                raise RuntimeError("this server has no TLS (use DovecotServer(tls=True))")
            imap = IMAPClient(self.host, self.tls_port, ssl=True,
                              ssl_context=self.ssl_context(), timeout=timeout)
        else:
            imap = IMAPClient(self.host, self.port, ssl=False, timeout=timeout)
            if starttls:
                imap.starttls(self.ssl_context())
        if user is not None:
            imap.login(user, self.users[user] if password is None else password)
        return imap

    def ssl_context(self) -> ssl.SSLContext:
        """A client SSL context that trusts only this server's test CA (hostname 127.0.0.1)."""
        if self.ca_path is None:
            raise RuntimeError("this server has no TLS (use DovecotServer(tls=True))")
        return ssl.create_default_context(cafile=str(self.ca_path))

    def append(self, user: str, raw: bytes, folder: str = "INBOX",
               flags: Iterable[str] = ()) -> int:
        """Appends `raw` to `user`'s `folder` over IMAP and returns the new message's UID."""
        with self.client(user) as imap:
            response: bytes = imap.append(folder, raw, flags=tuple(flags))
        found = _APPENDUID.search(response)
        if found is None:
            raise RuntimeError(f"APPEND gave no APPENDUID: {response!r}")
        return int(found.group(1))

    def messages(self, user: str, folder: str = "INBOX") -> list[Message]:
        """Every message in `user`'s `folder` by UID, read without setting \\Seen (EXAMINE)."""
        with self.client(user) as imap:
            imap.select_folder(folder, readonly=True)
            uids = imap.search("ALL")
            fetched = imap.fetch(uids, ["FLAGS", "BODY.PEEK[]"]) if uids else {}
        result = []
        for uid in sorted(fetched):
            data = fetched[uid]
            flags = tuple(flag.decode() if isinstance(flag, bytes) else str(flag)
                          for flag in data[b"FLAGS"])
            result.append(Message(uid, tuple(f for f in flags if f != "\\Recent"),
                                  bytes(data[b"BODY[]"])))
        return result

    def folders(self, user: str) -> list[str]:
        """The names of all of `user`'s folders, as the server lists them."""
        with self.client(user) as imap:
            return [str(name) for _flags, _delimiter, name in imap.list_folders()]

    def create_folder(self, user: str, folder: str) -> None:
        """Creates `folder` for `user` (and subscribes to it)."""
        with self.client(user) as imap:
            imap.create_folder(folder)
            imap.subscribe_folder(folder)

    def add_user(self, user: str, password: str) -> None:
        """Adds a user or changes its password; Dovecot notices at the next login."""
        self.users[user] = password
        if self._prepared:
            self._write_passwd()

    # -- internals -------------------------------------------------------------------------

    def _prepare(self) -> None:
        """Chooses the ports and writes users, directories, certificates and the configuration."""
        self.directory.chmod(0o755)  # Dovecot's unprivileged processes need to enter it
        self.port = free_port()
        if self.tls:
            self.tls_port = free_port()
            while self.tls_port == self.port:
                self.tls_port = free_port()
            self.ca_path, self.cert_path, self.key_path = _session_certificates(
                self.directory / "tls")
        mail_owner = (pwd.getpwuid(os.getuid()) if os.getuid() != 0
                      else _existing_user("dovecot", "nobody"))
        self.mail_root.mkdir()
        if os.getuid() == 0:
            os.chown(self.mail_root, mail_owner.pw_uid, mail_owner.pw_gid)
        self._write_passwd()
        if self.oauth2_introspection_url is not None:
            (self.directory / "oauth2.conf").write_text(
                f"introspection_mode = post\n"
                f"introspection_url = {self.oauth2_introspection_url}\n"
                f"force_introspection = yes\n"
                f"username_attribute = username\n"
                f"active_attribute = active\n"
                f"active_value = true\n", "utf-8")
        self.config_path.write_text(self._config(mail_owner), "utf-8")
        self._prepared = True

    def _write_passwd(self) -> None:
        """Writes the passwd-file used both as passdb ({PLAIN} passwords) and as userdb."""
        lines = []
        for user, password in self.users.items():
            if any(char in user + password for char in ":\n\r") or "/" in user:
                raise ValueError(f"unusable test user or password: {user!r}")
            lines.append(f"{user}:{{PLAIN}}{password}::::{self.mail_root / user}::\n")
        temporary = self.passwd_path.with_suffix(".new")
        temporary.write_text("".join(lines), "utf-8")
        temporary.chmod(0o644)
        temporary.replace(self.passwd_path)

    def _config(self, mail_owner: pwd.struct_passwd) -> str:
        """The complete dovecot.conf: nothing is included from /etc/dovecot."""
        path = self.directory
        if re.search(r"[\s\"'#<]", str(path)):
            raise RuntimeError(f"temporary directory {path} is unusable in dovecot.conf")
        if os.getuid() == 0:
            internal = _existing_user("dovecot", "nobody")
            login = _existing_user("dovenull", "nobody")
            users = f"""\
default_internal_user = {internal.pw_name}
default_internal_group = {_group_name(internal.pw_gid)}
default_login_user = {login.pw_name}
mail_uid = {mail_owner.pw_uid}
mail_gid = {mail_owner.pw_gid}
first_valid_uid = 1
first_valid_gid = 1
"""
        else:  # not root: every process runs as this user, no chroot is possible
            name, group = mail_owner.pw_name, _group_name(mail_owner.pw_gid)
            users = f"""\
default_internal_user = {name}
default_internal_group = {group}
default_login_user = {name}
first_valid_uid = {mail_owner.pw_uid}
last_valid_uid = {mail_owner.pw_uid}
first_valid_gid = {mail_owner.pw_gid}
last_valid_gid = {mail_owner.pw_gid}
service anvil {{
  chroot =
}}
service imap-login {{
  chroot =
}}
"""
        if self.tls:
            tls = f"""\
ssl = yes
ssl_cert = <{self.cert_path}
ssl_key = <{self.key_path}
"""
        else:
            tls = "ssl = no\n"
        imaps = ("    port = 0\n" if self.tls_port is None  # no default listener on 993
                 else f"    address = {HOST}\n    port = {self.tls_port}\n    ssl = yes\n")
        mechanisms = "plain login"
        oauth2 = ""
        if self.oauth2_introspection_url is not None:
            mechanisms += " xoauth2 oauthbearer"
            oauth2 = f"""\
passdb {{
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = {path}/oauth2.conf
}}
"""
        return f"""\
# Test server written by tests/dovecot.py; nothing here comes from /etc/dovecot.
instance_name = maild-test-dovecot
protocols = imap
listen = {HOST}
base_dir = {path}/run
state_dir = {path}/state
log_path = {self.log_path}
info_log_path = {self.log_path}
debug_log_path = {self.log_path}
auth_verbose = yes
{users}
{tls}
disable_plaintext_auth = no
auth_mechanisms = {mechanisms}
auth_failure_delay = 0
mail_location = maildir:~/Maildir
mail_max_userip_connections = 100
{oauth2}passdb {{
  driver = passwd-file
  args = scheme=PLAIN {self.passwd_path}
}}
userdb {{
  driver = passwd-file
  args = {self.passwd_path}
}}
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
service imap-login {{
  inet_listener imap {{
    address = {HOST}
    port = {self.port}
  }}
  inet_listener imaps {{
{imaps}  }}
}}
"""

    def _wait_until_ready(self, deadline: float) -> None:
        """Polls the IMAP port until Dovecot greets; raises with the log tail if it does not."""
        while True:
            process = self._process
            if process is None or process.poll() is not None:
                code = None if process is None else process.returncode
                self.stop()
                raise RuntimeError(f"Dovecot exited during start-up (exit code {code})\n"
                                   f"{self._log_tail()}")
            if _greets(self.port):
                return
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"Dovecot did not answer on {self.host}:{self.port} within "
                                   f"{START_TIMEOUT:.0f} s\n{self._log_tail()}")
            time.sleep(0.01)

    def _find_master(self, reaper: subprocess.Popen[bytes] | None) -> int | None:
        """The PID of the Dovecot master process: the reaper's first child, or from its pid file."""
        children = None if reaper is None else _live_children(reaper.pid)
        if children:
            return children[0]
        with contextlib.suppress(OSError, ValueError):
            return int((self.directory / "run" / "master.pid").read_text("ascii").strip())
        return None

    def _log_tail(self, lines: int = 40) -> str:
        """The last `lines` lines of Dovecot's output and log, for error messages."""
        tail = self.log_text().splitlines()[-lines:]
        return "--- Dovecot log (end) ---\n" + "\n".join(tail)


def _greets(port: int) -> bool:
    """Whether an IMAP server on 127.0.0.1:`port` sends an `* OK` greeting right now."""
    try:
        with socket.create_connection((HOST, port), timeout=1.0) as connection:
            return connection.recv(256).startswith(b"* OK")
    except OSError:
        return False


def _process_state(pid: int) -> str | None:
    """The state letter of process `pid` from /proc ("Z" for a zombie), or None if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text("ascii", "replace")
    except OSError:
        return None
    return stat.rpartition(")")[2].split()[0]


def _live_children(pid: int) -> list[int] | None:
    """The child processes of `pid` that have not exited, or None where /proc cannot tell."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text("ascii").split()
    except OSError:
        return None
    return [int(child) for child in children if _process_state(int(child)) not in (None, "Z")]


def _signal_group(pgid: int, signo: signal.Signals) -> None:
    """Sends `signo` to process group `pgid` (the server's own session), if it still exists."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signo)


@pytest.fixture
def dovecot() -> Iterator[DovecotServer]:
    """A running plaintext Dovecot IMAP server with the USERS, removed after the test."""
    with DovecotServer(binary=require_dovecot()) as server:
        yield server


@pytest.fixture
def dovecot_tls() -> Iterator[DovecotServer]:
    """A running Dovecot with STARTTLS on `port` and implicit TLS on `tls_port`, CA in `ca_path`."""
    with DovecotServer(tls=True, binary=require_dovecot()) as server:
        yield server


@pytest.fixture
def dovecot_oauth2(token_endpoint: TokenEndpoint) -> Iterator[DovecotServer]:
    """A running Dovecot that also takes XOAUTH2 and OAUTHBEARER, asking `token_endpoint`."""
    with DovecotServer(binary=require_dovecot(),
                       oauth2_introspection_url=token_endpoint.url) as server:
        yield server
