"""Turns at SQLite's one write lock among maild's writers, intake first.

SQLite lets one transaction write at a time. A writer that finds the lock taken
sleeps in SQLite's busy handler, in growing steps of up to 100 ms, and tries
again; with the intake writer and processing on one database, an SMTP client
would wait those sleeps for its 250 while processing commits batch after batch.
So they take turns here instead, on a lock that hands over at once:

- intake (`urgent`) waits only for the transaction in progress;
- processing asks `wanted()` after each message and, when intake waits, commits
  what it has and lets intake go first before it goes on.

The turn is a lock in the process (threads) and, for a database file, a lock
file beside it (`maild.db.turn`, flock), so that the daemon and its processing
worker processes take turns too; a waiting intake holds a shared lock on
`maild.db.intake`, which is how a writer in another process sees it waiting.
Where the lock files cannot be made (a read-only directory), turns are taken in
the process only. PostgreSQL locks rows, not the database: there, turns are not
taken at all.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from weakref import WeakKeyDictionary

from sqlalchemy import Engine

from maild.log import get_logger

log = get_logger("maild.write_turns")


class WriteTurns:
    """The turns of the writers at one SQLite database (`database`: its file, if any)."""

    def __init__(self, *, active: bool = True, database: Path | None = None) -> None:
        self.active = active
        self._lock = threading.RLock()  # a holder may take it again (giving a batch back)
        self._guard = threading.Lock()
        self._held = threading.local()
        self._urgent = 0
        self._turn_file: Path | None = None
        self._intake_file: Path | None = None
        if active and database is not None:
            self._turn_file = database.with_name(database.name + ".turn")
            self._intake_file = database.with_name(database.name + ".intake")

    @contextmanager
    def turn(self, *, urgent: bool = False) -> Iterator[None]:
        """Hold the write turn for the block; `urgent` (intake) is let in at the next message."""
        if not self.active:
            yield
            return
        depth = getattr(self._held, "depth", 0)
        if depth:  # this thread has the turn already
            self._held.depth = depth + 1
            try:
                yield
            finally:
                self._held.depth = depth
            return
        waiting = self._mark_urgent() if urgent else None
        try:
            self._lock.acquire()
            try:
                turn = self._lock_file(self._turn_file, fcntl.LOCK_EX)
            except BaseException:
                self._lock.release()
                raise
        finally:
            if urgent:
                self._unmark_urgent(waiting)
        self._held.depth = 1
        try:
            yield
        finally:
            self._held.depth = 0
            if turn is not None:
                os.close(turn)  # closing releases the flock
            self._lock.release()

    def held(self) -> bool:
        """Whether this thread holds the write turn."""
        return bool(getattr(self._held, "depth", 0))

    def wanted(self) -> bool:
        """Whether an urgent writer, in this process or another, waits for the turn now."""
        if self._urgent > 0:
            return True
        if self._intake_file is None:
            return False
        probe = self._open(self._intake_file)
        if probe is None:
            return False
        try:
            fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(probe)
        return False

    def let_urgent_go_first(self, timeout: float = 1.0) -> None:
        """After releasing the turn: wait (briefly) until the urgent writers have taken it."""
        deadline = time.monotonic() + timeout
        while self.wanted() and time.monotonic() < deadline:
            time.sleep(0.0002)

    def _mark_urgent(self) -> int | None:
        with self._guard:
            self._urgent += 1
        return self._lock_file(self._intake_file, fcntl.LOCK_SH)

    def _unmark_urgent(self, waiting: int | None) -> None:
        if waiting is not None:
            os.close(waiting)
        with self._guard:
            self._urgent -= 1

    def _lock_file(self, path: Path | None, how: int) -> int | None:
        """An open descriptor of `path` holding lock `how`; None without the file."""
        if path is None:
            return None
        descriptor = self._open(path)
        if descriptor is None:
            return None
        try:
            fcntl.flock(descriptor, how)
        except OSError:
            os.close(descriptor)
            raise
        return descriptor

    def _open(self, path: Path) -> int | None:
        try:
            return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as error:
            log.warning("write_turns.no_lock_file", path=str(path), error=str(error),
                        effect="turns are taken within this process only")
            self._turn_file = self._intake_file = None
            return None


_TURNS: WeakKeyDictionary[Engine, WriteTurns] = WeakKeyDictionary()
_TURNS_LOCK = threading.Lock()


def write_turns(engine: Engine) -> WriteTurns:
    """The write turns of `engine` in this process (inactive unless it is SQLite)."""
    with _TURNS_LOCK:
        turns = _TURNS.get(engine)
        if turns is None:
            database = engine.url.database if engine.dialect.name == "sqlite" else None
            path = Path(database) if database and database != ":memory:" else None
            turns = WriteTurns(active=engine.dialect.name == "sqlite", database=path)
            _TURNS[engine] = turns
        return turns
