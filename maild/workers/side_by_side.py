"""One pass over the waiting mail in several processes: `maild ingest` and `maild process`
with `--workers N`.

This process works through the waiting mail as it always does, and N-1 helpers,
forked from it once its code is loaded and its rules read (a fresh interpreter
would take seconds to get there), claim batches beside it until none waits. On
SQLite they take turns at the one write lock (`maild.write_turns`), each parsing
and reading its next batch while another writes; on PostgreSQL they claim side
by side (SKIP LOCKED). A batch with a reply to a message another process holds
waits for that commit (`Processor._wait_for_originals`), so that a thread is
decided in order.

A helper writes one line per finished message to a pipe, `state kind`, which
moves the progress bar and adds up to the pass's counts. A helper that fails is
reported with its exit status; what it had claimed and not committed is taken up
again once its lease runs out, as after any crash. A helper whose parent dies
(killed, say) commits the batch in hand, claims no more and stops.
"""

from __future__ import annotations

import os
import sys
import threading
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import Engine

from maild.heap import settle as settle_heap
from maild.log import get_logger
from maild.processing import Outcome, Processor, count_outcome

log = get_logger("maild.workers")


@dataclass
class _Helper:
    """A forked helper and what it said."""

    pid: int
    go: int  # the write end of the pipe it waits on before its pass
    reports: int  # the read end of the pipe it reports on
    counts: Counter[str] = field(default_factory=Counter)
    status: int | None = None


@dataclass
class PassResult:
    """What a pass in several processes did: counts as `Processor.run_pending`'s, summed."""

    counts: Counter[str]
    failures: list[str]  # one line for each helper that did not finish well


class SideBySide:
    """N-1 helpers forked at once, each waiting for `run` to start the pass with them.

    Forked before anything else starts a thread (a progress bar's, say), so that no
    helper inherits a lock that a thread of this process held; `close` (or leaving the
    `with` block) lets helpers that were never started go, and waits for them all.
    """

    def __init__(self, engine: Engine, processor_for: Callable[[], Processor],
                 processes: int) -> None:
        self._processor = processor_for()
        self._processor.rules()  # read before the fork: every helper starts with them
        settle_heap()  # set up: what exists now lives as long as the pass
        self._helpers: list[_Helper] = []
        for _ in range(max(0, processes - 1)):
            self._helpers.append(_fork(engine, processor_for, self._helpers))
        self._processes = processes

    def __enter__(self) -> SideBySide:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def run(self, progress: Callable[[Outcome | None], None] | None = None) -> PassResult:
        """Process every waiting message here and in the helpers; their counts, summed.

        `progress` is called with each of this process's outcomes, and with None for each
        message a helper finished. The helpers are waited for even if this process's own
        pass raises.
        """
        lock = threading.Lock()
        readers = [threading.Thread(target=_read_reports, args=(helper, lock, progress),
                                    name=f"helper-{helper.pid}", daemon=True)
                   for helper in self._helpers]
        for helper, reader in zip(self._helpers, readers, strict=True):
            reader.start()
            os.write(helper.go, b"g")
        log.info("process.side_by_side", processes=self._processes,
                 helpers=[helper.pid for helper in self._helpers])

        def own(outcome: Outcome) -> None:
            if progress is not None:
                with lock:
                    progress(outcome)

        counts: Counter[str] = Counter()
        try:
            counts = self._processor.run_pending(progress=own)
        finally:
            self.close()
            for reader in readers:
                reader.join()
        failures: list[str] = []
        for helper in self._helpers:
            counts.update(helper.counts)
            if helper.status != 0:
                how = (f"was killed by signal {-helper.status}" if helper.status is not None
                       and helper.status < 0 else f"exited with status {helper.status}")
                failures.append(f"processing helper {helper.pid} {how}; what it held is "
                                "processed again once its lease runs out")
                log.error("process.helper_failed", pid=helper.pid, status=helper.status)
        return PassResult(counts, failures)

    def close(self) -> None:
        """Let helpers that were not started go (without a pass), and wait for every one."""
        for helper in self._helpers:
            if helper.status is not None:
                continue
            os.close(helper.go)
            _, status = os.waitpid(helper.pid, 0)
            helper.status = os.waitstatus_to_exitcode(status)


def _fork(engine: Engine, processor_for: Callable[[], Processor],
          earlier: list[_Helper]) -> _Helper:
    """Start a helper: a child of this process that waits for its go, runs one pass and
    reports on a pipe. It closes its copies of the `earlier` helpers' pipes, which would
    otherwise keep them from seeing their ends."""
    go, told = os.pipe()
    reports, said = os.pipe()
    pid = os.fork()
    if pid:
        os.close(go)
        os.close(said)
        return _Helper(pid, told, reports)
    for descriptor in (told, reports, *(end for helper in earlier
                                        for end in (helper.go, helper.reports))):
        os.close(descriptor)
    code = 1
    parent = os.getppid()
    gone = False
    try:
        # The parent's pooled connections are the parent's: the child opens its own.
        engine.dispose(close=False)
        processor = processor_for()

        def report(outcome: Outcome) -> None:
            nonlocal gone
            if not gone:
                try:
                    os.write(said, f"{outcome.state} {outcome.kind or '-'}\n".encode())
                except BrokenPipeError:
                    gone = True

        def parent_gone() -> bool:
            """The parent died (killed, say): finish the batch in hand, claim no more."""
            nonlocal gone
            gone = gone or os.getppid() != parent
            return gone

        if os.read(go, 1):  # end of file: the parent is done without a pass
            processor.run_pending(progress=report, stop=parent_gone)
        if gone:
            log.warning("process.helper_parent_gone", pid=os.getpid(), parent=parent,
                        effect="stopped after its batch; the rest waits for the next pass")
        code = 0
    except BaseException:
        traceback.print_exc(file=sys.stderr)
    finally:
        sys.stderr.flush()
        os._exit(code)  # not the parent's atexit handlers, nor its finalizers


def _read_reports(helper: _Helper, lock: threading.Lock,
                  progress: Callable[[Outcome | None], None] | None) -> None:
    """Count a helper's lines as they come, until its end of the pipe closes."""
    with os.fdopen(helper.reports, "rb") as lines:
        for line in lines:
            state, _, kind = line.decode("ascii", "replace").strip().partition(" ")
            with lock:
                count_outcome(helper.counts, state, None if kind == "-" else kind)
                if progress is not None:
                    progress(None)
