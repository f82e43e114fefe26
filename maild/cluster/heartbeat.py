"""Keeping the processing claims of a live process fresh, so a short lease suffices.

A claimed inbound message is leased until `claimed_until`; once that has
passed, any instance may claim it again. A long lease makes the messages of a
killed instance wait long; a short one lets a slow but living instance lose
messages it is still working on (and two instances would process one message).
The heartbeat resolves this: the claimer says which messages it holds
(`hold`) and lets go of each once it is finished or given back (`drop`); a
thread renews the lease of every held message every third of the lease. When
the process dies, the renewals stop and the messages are claimable again one
lease later (30 s by default, `processing.lease_seconds`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, Engine, update
from sqlmodel import col

from maild.log import get_logger
from maild.models import Inbound, InboundState, utcnow
from maild.write_turns import write_turns

log = get_logger("maild.processing")


class ClaimHeartbeat:
    """Renews the processing leases of the messages this process holds, in a daemon thread."""

    def __init__(self, engine: Engine, lease: timedelta,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.engine = engine
        self.lease = lease
        self.clock = clock
        self.interval = max(lease.total_seconds() / 3, 0.05)
        self._held: set[int] = set()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def hold(self, inbound_ids: Iterable[int]) -> None:
        """Keep renewing the leases of `inbound_ids` (just claimed) until they are dropped."""
        ids = set(inbound_ids)
        if not ids:
            return
        with self._lock:
            self._held |= ids
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, daemon=True,
                                                name="processing-heartbeat")
                self._thread.start()

    def drop(self, inbound_ids: Iterable[int]) -> None:
        """Stop renewing these messages' leases: they are processed, failed or given back."""
        with self._lock:
            self._held -= set(inbound_ids)

    def held(self) -> frozenset[int]:
        """The messages whose leases are being renewed now."""
        with self._lock:
            return frozenset(self._held)

    def renew(self) -> int:
        """Extend the lease of every held message still being processed; returns how many."""
        ids = sorted(self.held())
        if not ids:
            return 0
        with write_turns(self.engine).turn(), self.engine.begin() as connection:
            result = connection.execute(
                update(Inbound)
                .where(col(Inbound.id).in_(ids), col(Inbound.state) == InboundState.PROCESSING)
                .values(claimed_until=self.clock() + self.lease))
        return cast("CursorResult[Any]", result).rowcount

    def _run(self) -> None:
        while True:
            time.sleep(self.interval)
            with self._lock:
                if not self._held:
                    self._thread = None
                    return  # started again by the next hold()
            try:
                self.renew()
            except Exception as error:  # the next beat tries again; the lease has slack
                log.warning("processing.lease_renewal_failed",
                            error=f"{type(error).__name__}: {error}"[:300])
