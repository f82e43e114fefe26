"""A recording SMTP sink on loopback: the relay maild delivers to, showing exactly what it sent."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from email.policy import default
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from tests.daemon_helpers import free_port


@dataclass
class Delivery:
    """One message the sink accepted."""

    sender: str
    recipients: list[str]
    raw: bytes

    @property
    def message(self) -> Message:
        return message_from_bytes(self.raw, policy=default)


@dataclass
class RecordingSink:
    """Accepts (or refuses, as scripted) everything, and records what it accepted."""

    deliveries: list[Delivery] = field(default_factory=list)
    replies: dict[str, list[str]] = field(default_factory=dict)  # per recipient, used first
    attempts: dict[str, int] = field(default_factory=dict)
    delay: float = 0.0  # seconds before answering DATA: a slow relay, as under load

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.delay:
            await asyncio.sleep(self.delay)
        recipient = envelope.rcpt_tos[0]
        self.attempts[recipient] = self.attempts.get(recipient, 0) + 1
        scripted = self.replies.get(recipient)
        if scripted:
            reply = scripted.pop(0)
            if not reply.startswith("250"):
                return reply
        self.deliveries.append(Delivery(envelope.mail_from, list(envelope.rcpt_tos),
                                        envelope.original_content))
        return "250 2.0.0 OK recorded"


@contextmanager
def running_sink(recorder: RecordingSink | None = None,
                 **smtp_options: Any) -> Iterator[tuple[RecordingSink, int]]:
    """Run `recorder` (a plain RecordingSink by default) on a free port of 127.0.0.1."""
    recorder = recorder or RecordingSink()
    port = free_port()
    controller = Controller(recorder, hostname="127.0.0.1", port=port, **smtp_options)
    controller.start()
    try:
        yield recorder, port
    finally:
        controller.stop()


@pytest.fixture
def sink() -> Iterator[tuple[RecordingSink, int]]:
    """A running recording sink and its port on 127.0.0.1 (it offers SMTPUTF8)."""
    with running_sink() as running:
        yield running


@pytest.fixture
def sink_without_smtputf8() -> Iterator[tuple[RecordingSink, int]]:
    """A recording sink that does not offer SMTPUTF8, as many relays still do not."""
    with running_sink(enable_SMTPUTF8=False) as running:
        yield running
