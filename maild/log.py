"""structlog set-up: readable console lines in a terminal, JSON lines otherwise."""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
           "error": logging.ERROR}


def configure_logging(level: str = "info", fmt: str = "auto", *, once: bool = False) -> None:
    """Send structlog events to stderr at `level`, as console text or JSON lines ("off": none).

    `once`: this process configures logging this once (the daemon), so each logger is
    built on its first event and kept, instead of built anew for every event.
    """
    if level == "off":
        structlog.configure(processors=[_drop], cache_logger_on_first_use=False)
        return
    use_console = fmt == "console" or (fmt == "auto" and sys.stderr.isatty())
    renderer: Any = (
        structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
        if use_console
        else structlog.processors.JSONRenderer(sort_keys=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS[level]),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=once,
    )


def _drop(logger: Any, method: str, event: Any) -> Any:
    raise structlog.DropEvent


def get_logger(name: str) -> Any:
    """A logger whose events carry `component=name`."""
    return structlog.get_logger(component=name)
