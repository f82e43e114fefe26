"""The live rules of a running maild: replaced whole on reload, kept when a reload fails.

A reader takes `current` once per message and uses that one object to the end,
so no message is ever routed with half-loaded rules. A reload that finds
problems keeps the old rules running and logs every problem.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from pathlib import Path

from maild.log import get_logger
from maild.routing.load import RulesError, load_rules, rules_version
from maild.routing.model import Rules

log = get_logger("maild.rules")


class LiveRules:
    """Holds the rules in force; `reload()` swaps in a new, fully checked set."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._lock = threading.Lock()
        self.reload_failures = 0  # refused reloads since start (metrics)
        self.listeners: list[Callable[[Rules], None]] = []  # told of every new version
        self._rules = load_rules(directory)  # raises RulesError: maild does not start on them
        log.info("rules.loaded", version=self._rules.version, directory=str(directory))

    @property
    def current(self) -> Rules:
        """The rules in force now (one immutable object)."""
        return self._rules

    def reload(self) -> bool:
        """Load the directory again; True if new rules are in force, False if the old ones stay."""
        with self._lock:
            try:
                rules = load_rules(self.directory)
            except RulesError as error:
                self.reload_failures += 1
                log.error("rules.reload_refused", version_kept=self._rules.version,
                          problems=[str(problem) for problem in error.problems])
                return False
            if rules.version == self._rules.version:
                return False
            previous, self._rules = self._rules, rules
            log.info("rules.reloaded", version=rules.version, previous=previous.version)
        for listener in self.listeners:
            listener(rules)
        return True

    def changed_on_disk(self) -> bool:
        """Whether the files differ from the rules in force."""
        try:
            return rules_version(self.directory) != self._rules.version
        except OSError:
            return False

    async def watch(self, interval: float = 2.0, settle: float = 1.0) -> None:
        """Reload when the files change, once they have stopped changing for `settle` seconds."""
        while True:
            await asyncio.sleep(interval)
            if not await asyncio.to_thread(self.changed_on_disk):
                continue
            seen = await asyncio.to_thread(rules_version, self.directory)
            while True:  # an editor may write several files: wait until it is done
                await asyncio.sleep(settle)
                now = await asyncio.to_thread(rules_version, self.directory)
                if now == seen:
                    break
                seen = now
            await asyncio.to_thread(self.reload)
