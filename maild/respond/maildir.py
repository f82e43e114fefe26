"""The maildir transport: outbound mail written as files a mail client or MTA picks up.

Each outbox item gets a file name derived from its id, so delivering the same
item twice (a crash after writing, before marking it sent) leaves one file.
Files are written to `tmp/`, synced, then renamed into `new/`; the renames
become durable when `new/` itself is synced, once for all the files delivered
since the last time (`settle`), before the outbox records them as sent.
"""

from __future__ import annotations

import os
import secrets
import socket
from pathlib import Path


class MaildirTransport:
    """Delivers composed messages into a Maildir folder."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._unsettled = False  # renamed into new/ since new/ was last synced

    def _prepare(self) -> None:
        for sub in ("tmp", "new", "cur"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)

    def file_name(self, item_id: int) -> str:
        """The unique, stable Maildir name of outbox item `item_id`."""
        host = socket.gethostname().replace("/", "\\057").replace(":", "\\072")
        return f"maild-outbox-{item_id}.{host}"

    def delivered(self, item_id: int) -> bool:
        """Whether outbox item `item_id` is already in the Maildir (new/ or cur/)."""
        name = self.file_name(item_id)
        return (self.root / "new" / name).exists() or any(
            (self.root / "cur").glob(f"{name}:*")) or (self.root / "cur" / name).exists()

    def deliver(self, item_id: int, raw: bytes, envelope_sender: str = "",
                recipient: str = "") -> str:
        """Write `raw` for item `item_id` durably into `new/`, unless it is there already
        (in `new/` or `cur/`); returns the file path."""
        self._prepare()
        if self.delivered(item_id):
            self._unsettled = True  # its sender may have died before syncing new/
            return str(self.root / "new" / self.file_name(item_id))
        return self._write(item_id, raw)

    def deliver_first(self, item_id: int, raw: bytes, envelope_sender: str = "",
                      recipient: str = "") -> str:
        """`deliver` for an item never handed to a transport before: `cur/` is not listed.

        Listing `cur/` costs as many entries as it holds (every message a mail client
        has read), for every item; only a retried or taken-over item can be there.
        """
        self._prepare()
        return self._write(item_id, raw)

    def _write(self, item_id: int, raw: bytes) -> str:
        name = self.file_name(item_id)
        final = self.root / "new" / name
        temporary = self.root / "tmp" / f"{name}.{os.getpid()}.{secrets.token_hex(4)}"
        with temporary.open("wb") as handle:
            handle.write(raw)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, final)
        self._unsettled = True
        return str(final)

    def settle(self) -> None:
        """Sync `new/`, so the files renamed into it since the last settle stay there."""
        if not self._unsettled:
            return
        directory = os.open(self.root / "new", os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
        self._unsettled = False
