"""What a transport says when it cannot deliver: try again later, or never."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable


class TemporaryFailure(Exception):
    """Delivery failed for now (4xx, connection trouble): the outbox tries again later."""


class PermanentFailure(Exception):
    """Delivery can never succeed (5xx): the item is marked failed."""


class Transport(Protocol):
    """Something that takes a composed message for delivery."""

    def deliver(self, item_id: int, raw: bytes, envelope_sender: str, recipient: str) -> str:
        """Deliver `raw`; return where it went. Raise TemporaryFailure or PermanentFailure."""


@runtime_checkable
class MarkingTransport(Protocol):
    """A transport that can say when it is about to make delivery final (SMTP's final dot)."""

    def deliver_marked(self, item_id: int, raw: bytes, envelope_sender: str, recipient: str,
                       before_dot: Callable[[], None]) -> str:
        """Deliver `raw` as `deliver` does, calling `before_dot` just before ending DATA.

        If `before_dot` raises, the message is abandoned before its end (the relay
        never takes it) and the exception propagates.
        """


@runtime_checkable
class RecognisingTransport(Protocol):
    """A transport that recognises an item it delivered before (a Maildir finds its file).

    Looking can cost (a Maildir lists its `cur/`), and only an item handed to a
    transport before can be found: the outbox says when an item is on its first try.
    """

    def deliver_first(self, item_id: int, raw: bytes, envelope_sender: str,
                      recipient: str) -> str:
        """Deliver `raw` as `deliver` does, without looking for an earlier delivery of it."""


@runtime_checkable
class SettlingTransport(Protocol):
    """A transport whose deliveries become durable together, when it is told to settle."""

    def settle(self) -> None:
        """Make every delivery made since the last settle durable; raise OSError if it cannot."""
