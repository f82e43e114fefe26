"""Turns at SQLite's one write lock among the threads of one process, intake first.

SQLite lets one transaction write at a time. A writer that finds the lock taken
sleeps in SQLite's busy handler, in growing steps of up to 100 ms, and tries
again; with the intake writer and the processing worker in one process, an SMTP
client would wait those sleeps for its 250 while processing commits batch after
batch. So the two take turns here instead, on a lock that hands over at once:

- intake (`urgent`) waits only for the transaction in progress;
- processing asks `wanted()` after each message and, when intake waits, commits
  what it has and lets intake go first before it goes on.

PostgreSQL locks rows, not the database: there, turns are not taken at all.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from weakref import WeakKeyDictionary

from sqlalchemy import Engine


class WriteTurns:
    """The turns of one process's writers at one SQLite database."""

    def __init__(self, *, active: bool = True) -> None:
        self.active = active
        self._lock = threading.RLock()  # a holder may take it again (giving a batch back)
        self._guard = threading.Lock()
        self._urgent = 0

    @contextmanager
    def turn(self, *, urgent: bool = False) -> Iterator[None]:
        """Hold the write turn for the block; `urgent` (intake) is let in at the next message."""
        if not self.active:
            yield
            return
        if urgent:
            with self._guard:
                self._urgent += 1
        try:
            self._lock.acquire()
        finally:
            if urgent:
                with self._guard:
                    self._urgent -= 1
        try:
            yield
        finally:
            self._lock.release()

    def wanted(self) -> bool:
        """Whether an urgent writer waits for the turn now."""
        return self._urgent > 0

    def let_urgent_go_first(self, timeout: float = 1.0) -> None:
        """After releasing the turn: wait (briefly) until the urgent writers have taken it."""
        deadline = time.monotonic() + timeout
        while self._urgent > 0 and time.monotonic() < deadline:
            time.sleep(0.0002)


_TURNS: WeakKeyDictionary[Engine, WriteTurns] = WeakKeyDictionary()
_TURNS_LOCK = threading.Lock()


def write_turns(engine: Engine) -> WriteTurns:
    """The write turns of `engine` in this process (inactive unless it is SQLite)."""
    with _TURNS_LOCK:
        turns = _TURNS.get(engine)
        if turns is None:
            turns = WriteTurns(active=engine.dialect.name == "sqlite")
            _TURNS[engine] = turns
        return turns
