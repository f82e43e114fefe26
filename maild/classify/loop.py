"""Loops: maild's own mail coming back to it.

`loop_signal` names the mark of maild's own mail on a message (its loop
header, a Message-ID of its own form under its own domain, one of its own
addresses as sender), or returns None.
"""

from __future__ import annotations

import re

from maild.classify.evidence import sender_address
from maild.parse import ParsedMail

LOOP_HEADER = "X-Maild-Loop"
# maild's acknowledgements have Message-IDs `maild.<hex>@<its domain>`.
_OWN_MESSAGE_ID = re.compile(r"^maild\.[0-9a-f][0-9a-f.]*@(?P<domain>[^@\s]+)$", re.IGNORECASE)


def loop_signal(mail: ParsedMail, own_domains: frozenset[str],
                own_addresses: frozenset[str]) -> str | None:
    """Why `mail` is maild's own mail, or None."""
    marker = mail.header(LOOP_HEADER)
    if marker is not None:
        return f"{LOOP_HEADER} header present ({marker[:80]}): maild sent this message"
    sender = sender_address(mail)
    if sender and sender in {address.lower() for address in own_addresses}:
        return f"sender {sender} is one of maild's own addresses"
    match = _OWN_MESSAGE_ID.match(mail.message_id or "")
    domains = {domain.lower().rstrip(".") for domain in own_domains}
    if match is not None and match.group("domain").lower().rstrip(".") in domains:
        return f"Message-ID {mail.message_id} is of maild's own form and domain"
    return None
