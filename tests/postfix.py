"""A real Postfix for tests, on a loopback port, with everything under a temporary directory.

`PostfixServer` writes its own main.cf and master.cf into a fresh directory
(`config_directory`), with the queue (`queue_directory`), `data_directory` and
its log file (`maillog_file`, through postlogd) beside them, runs
`postfix -c DIR start-fg` (the master in the foreground, as a child of the
test) and stops it with `postfix -c DIR stop` afterwards. It never reads or
changes /etc/postfix or the system's Postfix. Every service runs unchrooted.
Mail for anything but the support domain fails at once (no DNS, no relay).

Postfix needs root to start (its master binds and drops to `mail_owner`), and
the `postfix` user and `postdrop` group the Debian package creates; without
them the tests skip (or fail with MAILD_REQUIRE_SERVICES=1).
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import skip_or_fail
from tests.daemon_helpers import free_port, listening

NOT_INSTALLED = "Postfix is not installed (apt-get install postfix)"
_SBIN = ("/usr/sbin", "/usr/local/sbin", "/sbin")

# The services a Postfix instance needs to accept mail and deliver it locally
# (chroot off: the test's paths live outside /var/spool/postfix).
_MASTER_CF = """\
{listen} inet  n - n - - smtpd
pickup    unix  n - n 60 1 pickup
cleanup   unix  n - n - 0 cleanup
qmgr      unix  n - n 300 1 qmgr
rewrite   unix  - - n - - trivial-rewrite
bounce    unix  - - n - 0 bounce
defer     unix  - - n - 0 bounce
trace     unix  - - n - 0 bounce
verify    unix  - - n - 1 verify
flush     unix  n - n 1000? 0 flush
proxymap  unix  - - n - - proxymap
showq     unix  n - n - - showq
error     unix  - - n - - error
retry     unix  - - n - - error
discard   unix  - - n - - discard
anvil     unix  - - n - 1 anvil
scache    unix  - - n - 1 scache
postlog   unix-dgram n - n - 1 postlogd
"""

_MAIN_CF = """\
compatibility_level = 3.6
queue_directory = {root}/spool
data_directory = {root}/data
mail_owner = postfix
setgid_group = postdrop
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
myhostname = mx.postfix-test.example
mydomain = postfix-test.example
mydestination =
mynetworks = 127.0.0.0/8
alias_maps =
alias_database =
biff = no
smtpd_banner = $myhostname ESMTP
maillog_file = {root}/maillog
maillog_file_prefixes = {root}
# Nothing leaves this instance: other domains and bounces to them fail at once.
default_transport = error:this test Postfix sends no mail out
relay_transport = error:this test Postfix sends no mail out
# Retry soon, so a deferred message is seen to be retried within a test.
queue_run_delay = 2s
minimal_backoff_time = 2s
maximal_backoff_time = 4s
"""


def postfix_binary() -> str | None:
    """The `postfix` command, also looked for in sbin directories, or None."""
    search = os.pathsep.join([os.environ.get("PATH", ""), *_SBIN])
    return shutil.which("postfix", path=search)


def require_postfix() -> str:
    """The `postfix` command; skips (or fails when services are required) without it."""
    binary = postfix_binary()
    if binary is None:
        skip_or_fail(NOT_INSTALLED)
        raise AssertionError  # not reached
    if os.geteuid() != 0:
        skip_or_fail("Postfix can only be started as root")
    try:
        pwd.getpwnam("postfix")
    except KeyError:
        skip_or_fail("the postfix user is missing (the Debian package creates it)")
    return binary


class PostfixServer:
    """One Postfix instance in `root`, accepting SMTP on 127.0.0.1:`port`."""

    def __init__(self, binary: str, root: Path) -> None:
        self.binary = binary
        self.root = root
        self.config_dir = root / "etc"
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def configure(self, main_cf: str = "", master_cf: str = "") -> None:
        """Write main.cf and master.cf: the test's base, then `main_cf` and `master_cf` after it.

        Later lines win in main.cf; a service named again in `master_cf` replaces the base one.
        """
        self.config_dir.mkdir(parents=True, exist_ok=True)
        (self.root / "spool").mkdir(exist_ok=True)
        data = self.root / "data"
        data.mkdir(exist_ok=True)
        shutil.chown(data, user="postfix")
        (self.config_dir / "main.cf").write_text(
            _MAIN_CF.format(root=self.root) + main_cf.strip() + "\n")
        base = _MASTER_CF.format(listen=f"127.0.0.1:{self.port}")
        replaced = {line.split()[0] for line in master_cf.splitlines()
                    if line.strip() and not line[0].isspace() and not line.startswith("#")}
        kept = [line for line in base.splitlines() if line.split()[0] not in replaced]
        (self.config_dir / "master.cf").write_text("\n".join(kept) + "\n" + master_cf.strip()
                                                   + "\n")

    def postfix(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run `postfix -c CONFIG_DIR ARGS`."""
        return subprocess.run([self.binary, "-c", str(self.config_dir), *args],
                              capture_output=True, text=True, timeout=60, check=check)

    def postmap(self, table: Path) -> None:
        """Build the lookup table for `table` with this instance's configuration."""
        postmap = shutil.which("postmap", path=os.pathsep.join([os.environ.get("PATH", ""),
                                                                *_SBIN]))
        assert postmap is not None, "postmap comes with postfix"
        done = subprocess.run([postmap, "-c", str(self.config_dir), str(table)],
                              capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 0, f"postmap {table}: {done.stderr}"

    def start(self) -> None:
        """Check the configuration (creating the queue), start the master, wait for SMTP."""
        checked = self.postfix("check", check=False)
        assert checked.returncode == 0, checked.stderr + self.log()
        self.process = subprocess.Popen(
            [self.binary, "-c", str(self.config_dir), "start-fg"],
            stdout=(self.root / "master.out").open("ab"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while not listening(self.port):
            if self.process.poll() is not None:
                pytest.fail(f"postfix exited with {self.process.returncode}:\n{self.log()}\n"
                            + (self.root / "master.out").read_text(errors="replace"))
            if time.monotonic() > deadline:
                pytest.fail(f"postfix did not listen on {self.port}:\n{self.log()}")
            time.sleep(0.1)

    def stop(self) -> None:
        """Stop the master and all its processes."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.postfix("stop", check=False)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.postfix("abort", check=False)
                self.process.kill()
                self.process.wait()
        self.process = None

    def log(self) -> str:
        """Everything Postfix logged so far."""
        path = self.root / "maillog"
        return path.read_text(errors="replace") if path.exists() else ""

    def deliveries(self) -> list[str]:
        """The log lines of finished or deferred deliveries (status=...)."""
        return [line for line in self.log().splitlines() if re.search(r" status=\w+", line)]


@pytest.fixture
def postfix_server() -> Iterator[PostfixServer]:
    """A configured-by-the-test Postfix (call configure() and start()), stopped afterwards.

    Its directory is world-traversable (0755) so that `postfix` and the pipe's
    user reach it; it is removed afterwards.
    """
    binary = require_postfix()
    root = Path(tempfile.mkdtemp(prefix="maild-postfix-"))
    root.chmod(0o755)
    server = PostfixServer(binary, root)
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)
