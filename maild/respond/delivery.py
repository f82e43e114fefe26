"""What a transport says when it cannot deliver: try again later, or never."""

from __future__ import annotations

from typing import Protocol


class TemporaryFailure(Exception):
    """Delivery failed for now (4xx, connection trouble): the outbox tries again later."""


class PermanentFailure(Exception):
    """Delivery can never succeed (5xx): the item is marked failed."""


class Transport(Protocol):
    """Something that takes a composed message for delivery."""

    def deliver(self, item_id: int, raw: bytes, envelope_sender: str, recipient: str) -> str:
        """Deliver `raw`; return where it went. Raise TemporaryFailure or PermanentFailure."""
