"""The daemon's processing worker processes: started, woken, heard, restarted and stopped.

With `processing.workers` set to N (at least 1), `maild run` processes nothing in
its own interpreter: it starts N `maild process --follow` processes (`follow.py`)
with its own configuration, wakes them when mail is stored, hears from each what
it processed (so that the outbox and the SLA monitor are woken, and STATUS counts
it), forwards SIGHUP so that they reload the rules, and restarts one that dies,
waiting longer after each death in a row (1 s doubling to 30 s). When the daemon
stops, the workers get SIGTERM and finish their batch; one still running after
the drain time is killed. A worker whose daemon is killed sees its standard input
close and stops by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from maild.config import Config
from maild.log import get_logger

log = get_logger("maild.workers")

_FIRST_BACKOFF = 1.0
_MAX_BACKOFF = 30.0
_HEALTHY_AFTER = 60.0   # a worker that ran this long resets the backoff


def worker_command(config: Config) -> tuple[list[str], dict[str, str]]:
    """The command line and environment that start a worker with the daemon's configuration."""
    command = [sys.executable, "-m", "maild.cli"]
    if config.source != "defaults":
        command += ["--config", config.source]
    env = dict(os.environ)
    # The settings as the daemon resolved them, whatever file, variable or option set them.
    env.update({"MAILD_DATA_DIR": str(config.data_dir), "MAILD_RULES_DIR": str(config.rules_dir),
                "MAILD_DATABASE_URL": config.database_url})
    return [*command, "process", "--follow"], env


@dataclass
class WorkerPool:
    """N worker processes and what the daemon does with them."""

    count: int
    command: list[str]
    env: dict[str, str]
    on_report: Callable[[dict[str, int]], None]
    processes: dict[int, asyncio.subprocess.Process] = field(default_factory=dict)
    restarts: int = 0
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _stopping: bool = False

    def start(self) -> None:
        """Start every worker, each kept running by a task of its own."""
        for index in range(1, self.count + 1):
            self._tasks.append(asyncio.create_task(self._keep(index), name=f"worker-{index}"))

    def alive(self) -> int:
        """How many workers run now."""
        return sum(1 for process in self.processes.values() if process.returncode is None)

    def wake(self) -> None:
        """Ask every worker for a pass now (a byte on its standard input, never blocking)."""
        for process in self.processes.values():
            stdin = process.stdin
            if stdin is None or process.returncode is not None or stdin.is_closing():
                continue
            if stdin.transport.get_write_buffer_size() < 64:  # a wake-up already waits
                stdin.write(b"\n")

    def reload(self) -> None:
        """Ask every worker to reload the rules (SIGHUP)."""
        for process in self.processes.values():
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.send_signal(signal.SIGHUP)

    async def stop(self, timeout: float) -> None:
        """SIGTERM every worker and wait `timeout` seconds for them; kill what still runs."""
        self._stopping = True
        for process in self.processes.values():
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.terminate()
        deadline = time.monotonic() + timeout
        for index, process in self.processes.items():
            try:
                await asyncio.wait_for(process.wait(), max(0.1, deadline - time.monotonic()))
            except TimeoutError:
                log.warning("worker.killed", worker=index, pid=process.pid,
                            reason=f"still running {timeout:g} s after SIGTERM")
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _keep(self, index: int) -> None:
        backoff = _FIRST_BACKOFF
        while not self._stopping:
            started = time.monotonic()
            try:
                process = await asyncio.create_subprocess_exec(
                    *self.command, env=self.env, stdin=asyncio.subprocess.PIPE,
                    stdout=asyncio.subprocess.PIPE)
            except OSError as error:
                log.error("worker.start_failed", worker=index, error=str(error),
                          retry_in=backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, _MAX_BACKOFF)
                continue
            self.processes[index] = process
            log.info("worker.running", worker=index, pid=process.pid)
            assert process.stdout is not None
            async for line in process.stdout:
                self._report(index, line)
            code = await process.wait()
            if self._stopping:
                return
            if time.monotonic() - started > _HEALTHY_AFTER:
                backoff = _FIRST_BACKOFF
            self.restarts += 1
            log.error("worker.died", worker=index, pid=process.pid, code=code,
                      restart_in=backoff)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, _MAX_BACKOFF)

    def _report(self, index: int, line: bytes) -> None:
        try:
            counts: Any = json.loads(line)
        except ValueError:
            log.warning("worker.unreadable_report", worker=index, line=line[:200].decode(
                "utf-8", "replace"))
            return
        if isinstance(counts, dict):
            self.on_report({key: int(value) for key, value in counts.items()
                            if isinstance(value, int)})
