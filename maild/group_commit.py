"""Group commit for the daemon's intake: messages arriving together share one transaction.

Every SMTP/LMTP/IMAP arrival awaits its own result, which is known only after
the shared transaction is committed, so "stored" still means committed. One
writer thread does all intake writes, so concurrent sessions never contend for
SQLite's write lock (whose back-off sleeps would otherwise dominate latency).
While it commits one batch, the arrivals of that time queue up and make the
next: the busier the listener, the more messages share each sync to disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Sequence

from sqlalchemy import Engine

from maild.db import StorageError
from maild.intake import Arrival, Stored, store_batch

MAX_BATCH = 64

_Waiting = tuple[Arrival, "asyncio.Future[Stored]"]


class GroupCommitter:
    """Queues arrivals and stores them in batches from one writer thread."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._arrivals: queue.SimpleQueue[_Waiting | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> None:
        """Start the writer; it answers each arrival on the running loop."""
        self._loop = asyncio.get_running_loop()
        self._thread = threading.Thread(target=self._write, name="intake-writer", daemon=True)
        self._thread.start()

    async def stop(self) -> None:
        """Store what is queued, then stop the writer."""
        thread, self._thread = self._thread, None
        if thread is not None:
            self._arrivals.put(None)
            await asyncio.to_thread(thread.join)

    async def store(self, raw: bytes, sender: str | None, recipients: Sequence[str],
                    transport: str, source: str) -> Stored:
        """Store one message; returns once its batch is committed (raises StorageError)."""
        if self._thread is None:
            raise StorageError("the message could not be stored: intake is stopping")
        future: asyncio.Future[Stored] = asyncio.get_running_loop().create_future()
        self._arrivals.put((Arrival(raw, transport, sender, list(recipients), source), future))
        return await future

    def _write(self) -> None:
        """The writer thread: store what waits, in batches, until told to stop."""
        stopping = False
        while not stopping:
            first = self._arrivals.get()
            if first is None:
                return
            batch = [first]
            while len(batch) < MAX_BATCH:
                try:
                    waiting = self._arrivals.get_nowait()
                except queue.Empty:
                    break
                if waiting is None:
                    stopping = True
                    break
                batch.append(waiting)
            try:
                results = store_batch(self.engine, [arrival for arrival, _ in batch])
            except Exception as error:
                results = [StorageError(f"the message could not be stored: {error}")] * len(
                    batch)
            assert self._loop is not None
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits
                self._loop.call_soon_threadsafe(_answer, batch, results)


def _answer(batch: list[_Waiting], results: Sequence[Stored | StorageError]) -> None:
    for (_, future), result in zip(batch, results, strict=True):
        if future.done():  # the session went away while its message was stored
            continue
        if isinstance(result, StorageError):
            future.set_exception(result)
        else:
            future.set_result(result)
