"""The address in MAIL FROM and RCPT TO, read without the RFC 5322 header parser when plain.

aiosmtpd reads the path of every MAIL and RCPT command with the standard library's
header-value parser and builds a `typing.Protocol` class on each call: together
about a third of the event loop's time per message on a busy listener. Nearly
every MTA sends a plain path, `<local.part@example.se>` and perhaps parameters,
and for that `plain_path` gives the very answer aiosmtpd would. Anything else
(the null path, quoted local parts, comments, source routes, address literals,
non-ASCII, the form without angle brackets) is not plain and is left to aiosmtpd's reading.
"""

from __future__ import annotations

import re

_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_PLAIN = re.compile(rf"[ \t]*<({_ATOM}(?:\.{_ATOM})*@{_LABEL}(?:\.{_LABEL})*)>[ \t]*")


def plain_path(arg: str) -> tuple[str, str] | None:
    """(address, the parameters after it) of a plain `<local@domain>` path, or None."""
    match = _PLAIN.match(arg)
    if match is None:
        return None
    rest = arg[match.end():]
    if rest.startswith("("):  # a comment, which the header parser reads
        return None
    return match.group(1), rest
