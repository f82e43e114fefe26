"""Group commit for the daemon's intake: messages arriving together share one transaction.

Every SMTP/LMTP/IMAP arrival awaits its own result, which is known only after
the shared transaction is committed, so "stored" still means committed. One
writer thread does all intake writes, so concurrent sessions never contend for
SQLite's write lock (whose back-off sleeps would otherwise dominate latency).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence

from sqlalchemy import Engine

from maild.db import StorageError
from maild.intake import Arrival, Stored, store_batch

MAX_BATCH = 64


class GroupCommitter:
    """Queues arrivals and stores them in batches from one background task."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.queue: asyncio.Queue[tuple[Arrival, asyncio.Future[Stored]]] = asyncio.Queue()
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start the writer on the running loop."""
        self.task = asyncio.create_task(self._writer(), name="intake-writer")

    async def stop(self) -> None:
        """Store what is queued, then stop the writer."""
        await self.queue.join()
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task

    async def store(self, raw: bytes, sender: str | None, recipients: Sequence[str],
                    transport: str, source: str) -> Stored:
        """Store one message; returns once its batch is committed (raises StorageError)."""
        future: asyncio.Future[Stored] = asyncio.get_running_loop().create_future()
        await self.queue.put((Arrival(raw, transport, sender, list(recipients), source), future))
        return await future

    async def _writer(self) -> None:
        while True:
            items = [await self.queue.get()]
            # One turn of the loop first: DATA that other connections have finished reading
            # joins this transaction, and shares its sync to disk.
            await asyncio.sleep(0)
            while len(items) < MAX_BATCH and not self.queue.empty():
                items.append(self.queue.get_nowait())
            try:
                results = await asyncio.to_thread(store_batch, self.engine,
                                                  [arrival for arrival, _ in items])
            except Exception as error:
                results = [StorageError(f"the message could not be stored: {error}")] * len(
                    items)
            for (_, future), result in zip(items, results, strict=True):
                if not future.done():
                    if isinstance(result, StorageError):
                        future.set_exception(result)
                    else:
                        future.set_result(result)
                self.queue.task_done()
