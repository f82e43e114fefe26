"""A processing worker in a process of its own: `maild process --follow`.

The daemon starts `processing.workers` of these (see `pool.py`), so that processing
runs beside the SMTP/LMTP accept path instead of sharing its interpreter and its
one core. On SQLite the worker and the daemon's intake take turns at the database
through lock files (`maild.write_turns`), intake first; on PostgreSQL several
workers claim batches side by side (SKIP LOCKED).

What the worker and the daemon say to each other, over the worker's standard streams:

- stdin: any byte wakes the worker for a pass now; end of file means the daemon is
  gone (even killed), and the worker stops after its current batch;
- stdout: after a pass that did anything, one JSON line of its counts, e.g.
  {"processed": 12, "quarantined": 0, "received": 0}.

SIGTERM stops the worker after its current batch; SIGHUP reloads the rules.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import sys
import threading
from collections.abc import Callable

from maild.heap import settle as settle_heap
from maild.log import get_logger
from maild.processing import Processor
from maild.routing.reload import LiveRules

log = get_logger("maild.workers")


def follow(processor_for: Callable[[LiveRules], Processor], live: LiveRules,
           interval: float) -> int:
    """Process whenever woken (or every `interval` seconds) until told to stop; the exit code."""
    stopping = threading.Event()
    reload_wanted = threading.Event()
    wakeup_read, wakeup_write = os.pipe()
    os.set_blocking(wakeup_read, False)
    os.set_blocking(wakeup_write, False)
    signal.set_wakeup_fd(wakeup_write)
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    signal.signal(signal.SIGHUP, lambda *_: reload_wanted.set())
    processor = processor_for(live)
    settle_heap()  # set up: what exists now lives as long as the worker
    commands = sys.stdin.fileno()
    log.info("worker.started", pid=os.getpid(), rules=live.current.version)
    while not stopping.is_set():
        if reload_wanted.is_set():
            reload_wanted.clear()
            changed = live.reload()
            log.info("worker.rules_reloaded", changed=changed, version=live.current.version)
        try:
            counts = processor.run_pending(stop=stopping.is_set)
        except Exception as error:  # the worker outlives database trouble, as the daemon does
            log.error("worker.process_failed",
                      error=f"{type(error).__name__}: {error}"[:500], retry_in=interval)
            counts = None
        if counts:
            print(json.dumps({key: counts[key] for key in ("processed", "quarantined",
                                                           "received")}), flush=True)
        if stopping.is_set():
            break
        readable, _, _ = select.select([commands, wakeup_read], [], [], interval)
        if wakeup_read in readable:
            with contextlib.suppress(BlockingIOError):
                os.read(wakeup_read, 512)
        if commands in readable and not os.read(commands, 4096):
            log.info("worker.daemon_gone", pid=os.getpid())
            break
    log.info("worker.stopped", pid=os.getpid())
    return 0
