"""A set-up process's long-lived objects, set aside from Python's cyclic garbage collector.

Now and then the collector walks every container object of its oldest generation,
whenever a quarter as many as it kept last time have been added: in a set-up maild
process, the 150,000 or so objects of its libraries, its schema and its rules, some
80 ms a walk on a 2-core machine, during which no thread of the process runs (no SMTP
client gets its 250, no message is processed). What exists once a process is set up
lives as long as the process, so `settle` freezes it (`gc.freeze`): the collector no
longer walks it. Frozen objects are still freed by reference counting when they are
let go of; only garbage in a reference cycle among them would stay, and a set of rules,
the one part a running process replaces, holds none (tests/test_heap.py).
"""

from __future__ import annotations

import gc
import os
import time

from maild.log import get_logger

log = get_logger("maild.heap")


def settle() -> None:
    """Collect what is garbage now, then freeze every object that is left (see above)."""
    started = time.perf_counter()
    gc.collect()
    gc.freeze()
    log.info("heap.settled", pid=os.getpid(), frozen=gc.get_freeze_count(),
             seconds=round(time.perf_counter() - started, 3))
