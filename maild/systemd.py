"""The systemd notify protocol (sd_notify): READY=1, STATUS=, WATCHDOG=1, STOPPING=1.

Messages go as datagrams to $NOTIFY_SOCKET; without it (not under systemd)
every call does nothing.
"""

from __future__ import annotations

import os
import socket


def notify(message: str) -> bool:
    """Send `message` to systemd; False when not running under a notify-type unit."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]  # an abstract socket
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.setblocking(False)
        try:
            sock.sendto(message.encode("utf-8"), address)
        except OSError:
            return False
    return True


def watchdog_interval() -> float | None:
    """How often to send WATCHDOG=1 (half of WatchdogSec), or None when no watchdog is set."""
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or not usec.isdigit() or (pid and pid != str(os.getpid())):
        return None
    return int(usec) / 1_000_000 / 2
