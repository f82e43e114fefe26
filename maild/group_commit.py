"""Group commit for the daemon's intake: messages arriving together share one transaction.

Every SMTP/LMTP/IMAP arrival awaits its own result, which is known only after
the shared transaction is committed, so "stored" still means committed. One
writer thread does all intake writes, so concurrent sessions never contend for
SQLite's write lock (whose back-off sleeps would otherwise dominate latency).
While it commits one batch, the arrivals of that time queue up and make the
next: the busier the listener, the more messages share each sync to disk.
The writer keeps one database connection for its life, and opens a new one
after a batch could not be stored (the database may have restarted).
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Sequence

from sqlalchemy import Connection, Engine

from maild.db import StorageError
from maild.intake import Arrival, Stored, store_batch
from maild.log import get_logger

log = get_logger("maild.group_commit")

MAX_BATCH = 64

_Waiting = tuple[Arrival, "asyncio.Future[Stored]"]


class GroupCommitter:
    """Queues arrivals and stores them in batches from one writer thread."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._arrivals: queue.SimpleQueue[_Waiting | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._connection: Connection | None = None  # the writer thread's own

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
        try:
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
                results = self._store([arrival for arrival, _ in batch])
                assert self._loop is not None
                with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits
                    self._loop.call_soon_threadsafe(_answer, batch, results)
        finally:
            self._let_go_of_connection()

    def _store(self, arrivals: list[Arrival]) -> Sequence[Stored | StorageError]:
        """Store one batch on the writer's connection.

        A batch that fails as a whole on a connection used before is tried once more on
        a new one: the old one may have died with a database restart, which a connection
        taken from the pool would have been checked for. A retry stores nothing twice: a
        message the first try did store comes back as stored before.
        """
        reused = self._connection is not None
        results = self._store_once(arrivals)
        if reused and all(isinstance(result, StorageError) for result in results):
            log.warning("inbound.store_retried", count=len(arrivals),
                        error=str(results[0]))
            results = self._store_once(arrivals)
        return results

    def _store_once(self, arrivals: list[Arrival]) -> Sequence[Stored | StorageError]:
        try:
            if self._connection is None:
                self._connection = self.engine.connect()
            results = store_batch(self.engine, arrivals, connection=self._connection)
        except Exception as error:
            results = [StorageError(f"the message could not be stored: {error}")] * len(arrivals)
        if any(isinstance(result, StorageError) for result in results):
            self._let_go_of_connection()
        return results

    def _let_go_of_connection(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(Exception):
                connection.close()


def _answer(batch: list[_Waiting], results: Sequence[Stored | StorageError]) -> None:
    for (_, future), result in zip(batch, results, strict=True):
        if future.done():  # the session went away while its message was stored
            continue
        if isinstance(result, StorageError):
            future.set_exception(result)
        else:
            future.set_result(result)
