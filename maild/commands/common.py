"""What every command shares: exit codes, the lazily opened runtime, output helpers."""

from __future__ import annotations

import json
import os
import sys
from datetime import datetime
from typing import TYPE_CHECKING, Any

from maild.config import Config

if TYPE_CHECKING:
    from rich.console import Console

    from maild.runtime import Runtime

EX_OK = 0
EX_FAILED = 1
EX_USAGE = 64
EX_DATAERR = 65
EX_TEMPFAIL = 75
EX_CONFIG = 78


class CommandError(Exception):
    """A command cannot do what was asked; the text is for the person who asked."""

    def __init__(self, message: str, code: int = EX_FAILED) -> None:
        super().__init__(message)
        self.code = code


class Context:
    """The configuration, and the runtime opened on first use."""

    def __init__(self, config: Config, *, verbose: bool = False) -> None:
        self.config = config
        self.verbose = verbose
        self._runtime: Runtime | None = None

    @property
    def runtime(self) -> Runtime:
        """The database-backed runtime (opens and migrates the database once)."""
        if self._runtime is None:
            from maild.runtime import open_runtime

            self._runtime = open_runtime(self.config)
        return self._runtime


def console() -> Console:
    """A console on standard output; wide plain text when it is not a terminal."""
    from rich.console import Console

    if sys.stdout.isatty():
        return Console(highlight=False)
    columns = os.environ.get("COLUMNS", "")
    width = int(columns) if columns.isdigit() and int(columns) >= 40 else 240
    return Console(highlight=False, width=width, color_system=None)


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def print_json(data: Any) -> None:
    """Write `data` as indented JSON on standard output."""
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False, default=_default) + "\n")


def print_table(title: str | None, columns: list[str], rows: list[list[Any]]) -> None:
    """Write a table of `rows` under `columns`."""
    from rich.table import Table

    table = Table(title=title, show_lines=False, header_style="bold")
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*["" if cell is None else str(cell) for cell in row])
    console().print(table)


ZONE_LABEL = "Europe/Stockholm"


def readable(value: Any) -> str:
    """A stored value as a person reads it: lists joined, tables as `key: value`, ja/nej."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ", ".join(readable(item) for item in value) or "none"
    if isinstance(value, dict):
        return "; ".join(f"{key}: {readable(item)}" for key, item in value.items()) or "none"
    if isinstance(value, datetime):
        return local_time(value)
    return str(value)


def local_time(moment: datetime | None) -> str:
    """`moment` in Europe/Stockholm as `2026-11-22 14:05`, or empty."""
    if moment is None:
        return ""
    from maild.respond.wording import LOCAL_ZONE

    return moment.astimezone(LOCAL_ZONE).strftime("%Y-%m-%d %H:%M")
