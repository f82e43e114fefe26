"""What an operator does to one outbox item: queue it again, or cancel it.

Both are conditional updates on the state the operator saw, so they never race
a sender: an item being delivered right now is neither retried nor cancelled,
and a sent item is never queued again (that would send it twice).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import CursorResult, Engine, update
from sqlmodel import Session, col

from maild.models import Outbox, OutboxState, utcnow


@dataclass(frozen=True)
class ActionResult:
    """Whether the action was done, and the line that tells the operator what happened."""

    done: bool
    message: str


def _when(item: Outbox) -> str:
    moment = item.sent_at or item.created_at
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def _in_flight(item: Outbox) -> bool:
    return (item.state == OutboxState.SENDING and item.claimed_until is not None
            and item.claimed_until >= utcnow())


def _refusal(item: Outbox, action: str) -> str | None:
    """Why `action` cannot be done to `item`, or None."""
    if item.state in (OutboxState.SENT, OutboxState.BOUNCED):
        return (f"outbox item {item.id} was sent at {_when(item)} ({item.state}); "
                f"it cannot be {action}")
    if item.state == OutboxState.SENDING and item.committing_at is not None:
        return (f"outbox item {item.id} was being handed to the relay when its sender stopped "
                f"(final dot at {item.committing_at.strftime('%H:%M:%S UTC')}): the relay "
                f"most likely has it, and the next outbox pass records it as sent; it cannot "
                f"be {action}")
    if _in_flight(item):
        assert item.claimed_until is not None
        return (f"outbox item {item.id} is being delivered right now (claimed until "
                f"{item.claimed_until.strftime('%H:%M:%S UTC')}); try again when it is done")
    return None


def _update(engine: Engine, item: Outbox, values: dict[str, Any]) -> bool:
    """Apply `values` only if the item is still in the state it was read in."""
    with engine.begin() as connection:
        result = connection.execute(
            update(Outbox).where(col(Outbox.id) == item.id, col(Outbox.state) == item.state,
                                 col(Outbox.attempts) == item.attempts)
            .values(**values))
        return cast("CursorResult[Any]", result).rowcount == 1


def retry_item(engine: Engine, item_id: int) -> ActionResult:
    """Queue a failed or cancelled item again for immediate delivery, with a fresh lifetime."""
    for _ in range(3):
        with Session(engine) as session:
            item = session.get(Outbox, item_id)
        if item is None:
            return ActionResult(False, f"no outbox item {item_id}")
        refusal = _refusal(item, "retried (that would send it twice)")
        if refusal:
            return ActionResult(False, refusal)
        history = [*(item.history or []), {"at": utcnow().isoformat(), "result": "requeued",
                                           "detail": f"queued again by an operator "
                                                     f"(was {item.state})"}]
        if _update(engine, item, {"state": OutboxState.QUEUED, "next_attempt_at": None,
                                  "created_at": utcnow(), "claimed_until": None,
                                  "claim_token": None, "committing_at": None,
                                  "history": history}):
            return ActionResult(True, f"outbox item {item_id} queued again (was {item.state})")
    return ActionResult(False, f"outbox item {item_id} keeps changing; try again")


def cancel_item(engine: Engine, item_id: int, reason: str | None = None) -> ActionResult:
    """Withdraw an item that has not been sent; a sent item or one in flight is refused."""
    for _ in range(3):
        with Session(engine) as session:
            item = session.get(Outbox, item_id)
        if item is None:
            return ActionResult(False, f"no outbox item {item_id}")
        if item.state == OutboxState.CANCELLED:
            return ActionResult(True, f"outbox item {item_id} was already cancelled")
        refusal = _refusal(item, "cancelled")
        if refusal:
            return ActionResult(False, refusal)
        detail = f"cancelled by an operator (was {item.state})" + (
            f": {reason}" if reason else "")
        history = [*(item.history or []), {"at": utcnow().isoformat(), "result": "cancelled",
                                           "detail": detail}]
        if _update(engine, item, {"state": OutboxState.CANCELLED, "last_error": detail,
                                  "claimed_until": None, "claim_token": None,
                                  "committing_at": None, "history": history}):
            return ActionResult(True, f"outbox item {item_id} cancelled (was {item.state}, to "
                                      f"{item.recipient}); it will not be sent")
    return ActionResult(False, f"outbox item {item_id} keeps changing; try again")
