"""Named leases in the database: at most one holder at a time, taken over once they expire.

Several maild instances share state only through the database. A job that
must run in one place at a time (polling an IMAP folder) is guarded by a
lease row: the holder renews it well before it expires; a holder that dies
(kill -9, a lost machine) stops renewing, and another instance takes the lease
over once it has expired. Every change is one conditional UPDATE whose row
count decides, so it is safe on SQLite and PostgreSQL alike. Times are the
instances' clocks (UTC): keep them synchronised (NTP), as for the SLA clock.
"""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import CursorResult, Engine, and_, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col

from maild.models import Lease, table_of, utcnow


def holder_name() -> str:
    """This process's name as a lease holder: host, process id and a random part."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


@dataclass
class NamedLease:
    """One lease, seen from one would-be holder."""

    engine: Engine
    name: str
    holder: str
    duration: timedelta = timedelta(seconds=10)
    clock: Callable[[], datetime] = utcnow
    held_until: datetime | None = field(default=None, init=False)

    def acquire(self) -> bool:
        """Take or renew the lease; True if this holder has it now."""
        now = self.clock()
        until = now + self.duration
        table = table_of(Lease)
        with self.engine.begin() as connection:
            result = cast(CursorResult[tuple[()]], connection.execute(
                update(table)
                .where(and_(col(Lease.name) == self.name,
                            or_(col(Lease.holder) == self.holder,
                                col(Lease.expires_at) <= now)))
                .values(holder=self.holder, expires_at=until, renewed_at=now)))
            taken = result.rowcount == 1
        if not taken:
            taken = self._create(now, until)
        self.held_until = until if taken else None
        return taken

    def _create(self, now: datetime, until: datetime) -> bool:
        """Insert the lease row for the first holder ever; False if another got there first."""
        table = table_of(Lease)
        try:
            with self.engine.begin() as connection:
                if connection.execute(select(col(Lease.name)).where(
                        col(Lease.name) == self.name)).first() is not None:
                    return False
                connection.execute(insert(table).values(
                    name=self.name, holder=self.holder, expires_at=until, renewed_at=now))
        except IntegrityError:
            return False
        return True

    def holds(self) -> bool:
        """Whether this holder's lease has not yet expired by its own account."""
        return self.held_until is not None and self.clock() < self.held_until

    def release(self) -> None:
        """Give the lease up at once (a clean stop), so another instance need not wait."""
        table = table_of(Lease)
        with self.engine.begin() as connection:
            connection.execute(update(table)
                               .where(and_(col(Lease.name) == self.name,
                                           col(Lease.holder) == self.holder))
                               .values(expires_at=self.clock()))
        self.held_until = None

    def current_holder(self) -> str | None:
        """Who holds the lease now (an expired lease has no holder)."""
        with self.engine.connect() as connection:
            row = connection.execute(select(col(Lease.holder), col(Lease.expires_at)).where(
                col(Lease.name) == self.name)).first()
        if row is None or row[1] is None or row[1] <= self.clock():
            return None
        return str(row[0])
