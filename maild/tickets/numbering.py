"""Ticket numbers such as `MD-2026-00042-7`: prefix, year, sequence and a check digit.

The sequence is allocated inside the ticket's own transaction from a counter
row per year, so several maild processes on one database never hand out the
same number. The Luhn check digit lets maild tell a real ticket tag from a
number that merely looks like one (a typo, or an order number).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Any

from sqlalchemy import bindparam, update
from sqlmodel import Session

from maild.models import TicketCounter, table_of
from maild.prepared import Prepared


def luhn_digit(digits: str) -> int:
    """The Luhn check digit that makes `digits` + digit valid."""
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2 == 0:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return (10 - total % 10) % 10


@lru_cache(maxsize=16)
def _number_pattern(prefix: str) -> re.Pattern[str]:
    """`TicketNumbering.pattern` of `prefix`, compiled once (it is asked for every message)."""
    return re.compile(rf"(?<![\w-]){re.escape(prefix)}-(\d{{4}})-(\d{{5,9}})-(\d)(?![\w-])",
                      re.IGNORECASE)


@dataclass(frozen=True)
class TicketNumbering:
    """Formats, recognises and validates the ticket numbers of one prefix."""

    prefix: str = "MD"

    def format(self, year: int, sequence: int) -> str:
        """The ticket number for `sequence` in `year`, with its check digit."""
        body = f"{year:04d}{sequence:05d}"
        return f"{self.prefix}-{year:04d}-{sequence:05d}-{luhn_digit(body)}"

    @property
    def pattern(self) -> re.Pattern[str]:
        """A pattern matching anything shaped like a ticket number of this prefix."""
        return _number_pattern(self.prefix)

    def is_valid(self, number: str) -> bool:
        """Whether `number` is shaped right and its check digit matches."""
        match = self.pattern.fullmatch(number.strip())
        if not match:
            return False
        year, sequence, check = match.groups()
        return luhn_digit(year + sequence) == int(check)

    def find(self, text: str) -> list[str]:
        """The valid ticket numbers in `text`, upper-cased, in order of appearance."""
        found: list[str] = []
        for match in self.pattern.finditer(text):
            candidate = match.group(0).upper()
            if self.is_valid(candidate) and candidate not in found:
                found.append(candidate)
        return found


_COUNTER = table_of(TicketCounter)
_NEXT = Prepared(update(_COUNTER).where(_COUNTER.c.scope == bindparam("counter_scope"))
                 .values(last=_COUNTER.c.last + 1).returning(_COUNTER.c.last))
_FIRST = {"scope": bindparam("counter_scope"), "last": 0}


@cache
def _create_counter(dialect: str) -> Any:
    """The INSERT of a year's counter row that does nothing when another process made it first.

    Only the database's own dialect is imported: SQLite never loads PostgreSQL's.
    """
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(_COUNTER).values(_FIRST).on_conflict_do_nothing()
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(_COUNTER).values(_FIRST).on_conflict_do_nothing()


def allocate_number(session: Session, numbering: TicketNumbering, year: int) -> str:
    """Take the next sequence number of `year` inside the caller's transaction.

    The counter row is locked until the caller's transaction ends, so numbers stay dense
    and unique with any number of processes. The row of a year is created on first use.
    """
    scope = str(year)
    connection = session.connection()
    sequence = _NEXT.run(connection, {"counter_scope": scope}).scalar()
    if sequence is None:
        connection.execute(_create_counter(connection.dialect.name), {"counter_scope": scope})
        sequence = _NEXT.run(connection, {"counter_scope": scope}).scalar_one()
    return numbering.format(year, int(sequence))
