"""Acknowledgement accounting, held by one transaction at a time across every maild process.

The rate limits and the same-text rule count acknowledgements in the database,
and the processing transaction then queues one in the outbox. Two workers that
count at once would both see 4 and both queue the 5th; so the count and the
outbox row are made under one lock that lasts until the transaction ends:

- PostgreSQL: a transaction-scoped advisory lock (`pg_advisory_xact_lock`) on
  one fixed key. The isolation level is READ COMMITTED, so every count after
  the lock sees what the previous holder committed.
- SQLite: the database's write lock (`BEGIN IMMEDIATE`). SQLite has one writer
  at a time, but the driver opens a transaction only at the first write, so
  the counts would otherwise be read before it, outside the transaction that
  queues the acknowledgement; taking the write lock first puts them inside.

One key for all of acknowledgement accounting, not one per mailbox, domain and
text: a single lock cannot deadlock with itself in any order of acquisition,
and little parallelism is lost, because the ticket-number counter row already
holds every transaction that makes a ticket until it commits. A deadlock is
possible only with a row lock taken earlier in the same transaction (a worker
holding the counter row, waiting here, against one holding this lock, waiting
for the counter row). So the lock is taken before the transaction's first
write: processing one message counts before it writes anything, and a
transaction that processes several messages takes it at its start
(`hold_ack_accounting` before the first message). Should it be asked for after
a write all the same, it is only tried, never waited for: if another
transaction holds it, `AccountingBusy` is raised, and the caller commits what
it has and processes the message again in a transaction of its own.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlmodel import Session

# "maildack" as a number: the advisory lock's key (the migration lock has another).
ACCOUNTING_LOCK_KEY = 0x6D61696C6461636B


class AccountingBusy(Exception):
    """Another transaction holds acknowledgement accounting and this one may not wait for it."""


def hold_ack_accounting(session: Session) -> None:
    """Hold acknowledgement accounting until `session`'s transaction ends (see the module)."""
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        written = connection.execute(text("SELECT pg_current_xact_id_if_assigned()")).scalar()
        if written is None:
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"),
                               {"key": ACCOUNTING_LOCK_KEY})
            return
        held = connection.execute(text("SELECT pg_try_advisory_xact_lock(:key)"),
                                  {"key": ACCOUNTING_LOCK_KEY}).scalar()
        if not held:
            raise AccountingBusy("another transaction holds acknowledgement accounting, and "
                                 "this one has written already: process the message again "
                                 "in a transaction of its own")
        return
    if connection.dialect.name == "sqlite":
        raw = connection.connection.dbapi_connection
        assert raw is not None
        # A transaction already open has written, so it holds the write lock already.
        if not raw.in_transaction:
            raw.execute("BEGIN IMMEDIATE")
