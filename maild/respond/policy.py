"""Whether a person gets an acknowledgement: who it may go to, and how often.

The recipient rule: a single Reply-To address if the message has one, else the
From address; never one of maild's own addresses, never a list or unattended
address (no-reply, -request, -bounces, owner-, ...), never an address that
bounced permanently within the suppression period. Then the limits: at most
`max_per_hour` and `max_per_day` acknowledgements to one address, and none for
a text the same sender already had acknowledged within the duplicate window.
The ticket is made in every case; only the acknowledgement is withheld.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

_UNATTENDED = re.compile(
    r"^(no[-_.]?reply|do[-_.]?not[-_.]?reply|noreply|donotreply|mailer[-_.]?daemon|"
    r"postmaster|bounces?|owner-.+|.+-(request|bounces?|owner|admin)|list-.+|.+-l|"
    r"listserv|majordomo|mailman|nobody)(\+.*)?$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class AckLimits:
    """How often acknowledgements may go to one address."""

    max_per_hour: int = 5
    max_per_day: int = 20
    duplicate_window: timedelta = timedelta(hours=24)
    suppression: timedelta = timedelta(days=60)


class AckHistory(Protocol):
    """What was sent and what bounced, as the acknowledgement policy needs it."""

    def acks_sent_to(self, address: str, since: datetime) -> int:
        """How many acknowledgements went to `address` since `since`."""

    def same_text_acknowledged(self, sender: str, digest: str, since: datetime) -> str | None:
        """The ticket whose opening message from `sender` had this text digest and an ack."""

    def suppressed(self, address: str, since: datetime) -> str | None:
        """Why `address` must not get mail: it bounced permanently since `since`."""


def text_digest(text: str) -> str:
    """A digest of the text that ignores case, spacing and line breaks."""
    normalized = " ".join(text.lower().split())[:65536]
    return hashlib.sha256(normalized.encode("utf-8")).hexdigest()


def is_unattended(address: str) -> bool:
    """Whether `address` looks like a list or a mailbox nobody reads (no-reply, -request ...)."""
    return bool(_UNATTENDED.match(address.rpartition("@")[0]))


def ack_verdict(recipient: str, *, sender: str | None, digest: str, now: datetime,
                history: AckHistory, limits: AckLimits) -> tuple[bool, str]:
    """(send?, why) for an acknowledgement of a new ticket to `recipient`."""
    if is_unattended(recipient):
        return False, f"{recipient} looks like a list or unattended address: no acknowledgement"
    reason = history.suppressed(recipient, now - limits.suppression)
    if reason:
        return False, f"{recipient} bounced permanently ({reason}): no acknowledgement"
    last_hour = history.acks_sent_to(recipient, now - timedelta(hours=1))
    if last_hour >= limits.max_per_hour:
        return False, (f"rate limit: {last_hour} acknowledgements to {recipient} in the last "
                       f"hour (at most {limits.max_per_hour})")
    last_day = history.acks_sent_to(recipient, now - timedelta(days=1))
    if last_day >= limits.max_per_day:
        return False, (f"rate limit: {last_day} acknowledgements to {recipient} in the last "
                       f"day (at most {limits.max_per_day})")
    if sender:
        earlier = history.same_text_acknowledged(sender, digest, now - limits.duplicate_window)
        if earlier:
            return False, (f"the same text from {sender} was acknowledged as {earlier} within "
                           f"{limits.duplicate_window.total_seconds() / 3600:g} h")
    return True, "new ticket from a person"
