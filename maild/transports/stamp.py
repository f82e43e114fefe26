"""The date of a trace header, as RFC 5322 writes it, made once a second.

Every accepted message gets a Received header that ends in the current date;
formatting it costs more than the rest of the header, and it changes once a
second, so the text is kept until the second changes.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from email.utils import format_datetime
from functools import lru_cache


def date_now() -> str:
    """The current time in UTC as an RFC 5322 date ("Mon, 30 Nov 2026 09:34:08 +0000")."""
    return _date_of(int(time.time()))


@lru_cache(maxsize=1)
def _date_of(second: int) -> str:
    return format_datetime(datetime.fromtimestamp(second, UTC))
