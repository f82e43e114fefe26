"""The idle timeout of an SMTP/LMTP session, moved on without a new timer per command.

aiosmtpd cancels its timer and makes a new one for every command: four timers for
a small mail, each left in the event loop's heap, cancelled, until the loop sweeps
them out. Here the timer keeps running when a command comes; only the deadline
moves. When the timer fires before the deadline, it sets itself again for the time
left. The session is closed at the same moment as aiosmtpd would close it: its
timeout after the last command.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

# What IdleDeadline is mixed into, as the type checker sees it (SMTP or LMTP at run time).
if TYPE_CHECKING:
    from aiosmtpd.smtp import SMTP as _Server
else:
    _Server = object


class IdleDeadline(_Server):
    """aiosmtpd's `_reset_timeout`, with one timer per session instead of one per command."""

    _deadline: float = 0.0

    def _reset_timeout(self, duration: float | None = None) -> None:
        """Close the session `duration` (by default its timeout) from now, unless a
        command comes first."""
        now = self.loop.time()
        self._deadline = now + (duration or self._timeout_duration)
        handle = self._timeout_handle
        if handle is not None and not handle.cancelled() and now < handle.when() <= self._deadline:
            return  # it fires in time, and sets itself again for the rest
        if handle is not None:
            handle.cancel()
        self._timeout_handle = self.loop.call_at(self._deadline, self._deadline_reached)

    def _deadline_reached(self) -> None:
        """Time the session out if the deadline has passed; otherwise wait the rest."""
        if self.loop.time() < self._deadline:
            self._timeout_handle = self.loop.call_at(self._deadline, self._deadline_reached)
            return
        self._timeout_cb()  # type: ignore[no-untyped-call]

