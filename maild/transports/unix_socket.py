"""A listening Unix socket that appears at its path already with its owner, group and mode.

The socket is bound under a temporary name in the same directory, given its
ownership and permissions there, and then renamed into place, so a client (such
as Postfix's lmtp client) never finds it with the wrong permissions. Blocking:
call it in a thread.
"""

from __future__ import annotations

import contextlib
import grp
import os
import pwd
import secrets
import socket
import stat
from pathlib import Path

from maild.config import UnixSocketAccess


class SocketSetupError(Exception):
    """The socket could not be created with the ownership asked for; the text says why."""


def _uid(name: str | None) -> int:
    if name is None:
        return -1
    if name.isdigit():
        return int(name)
    try:
        return pwd.getpwnam(name).pw_uid
    except KeyError:
        raise SocketSetupError(f"lmtp.socket_owner: no user {name!r} on this system") from None


def _gid(name: str | None) -> int:
    if name is None:
        return -1
    if name.isdigit():
        return int(name)
    try:
        return grp.getgrnam(name).gr_gid
    except KeyError:
        raise SocketSetupError(f"lmtp.socket_group: no group {name!r} on this system") from None


def bind_unix_socket(path: Path, access: UnixSocketAccess, backlog: int = 100) -> socket.socket:
    """A listening socket at `path` with `access` applied before it becomes visible there.

    A stale socket at `path` is replaced; any other kind of file there is an error.
    """
    uid, gid = _uid(access.owner), _gid(access.group)
    try:
        if not stat.S_ISSOCK(path.lstat().st_mode):
            raise SocketSetupError(f"{path} exists and is not a socket; not replacing it")
    except FileNotFoundError:
        pass
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        listener.bind(str(temporary))
        try:
            if uid != -1 or gid != -1:
                os.chown(temporary, uid, gid)
            os.chmod(temporary, access.mode)
        except PermissionError as error:
            raise SocketSetupError(
                f"cannot give {path} owner {access.owner or '(unchanged)'}, group "
                f"{access.group or '(unchanged)'}, mode {access.mode:04o}: {error.strerror} "
                "(maild must run as root or be a member of that group)") from error
        os.rename(temporary, path)
        listener.listen(backlog)
        listener.setblocking(False)
    except BaseException:
        listener.close()
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise
    return listener
