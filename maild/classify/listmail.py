"""List traffic: posts of mailing lists, newsletters and other bulk mail.

`list_signal` names the header that shows the message went to many readers
at once, or returns None; answering those would write to a list or a
newsletter robot.
"""

from __future__ import annotations

from maild.classify.evidence import header_text
from maild.parse import ParsedMail

_BULK_PRECEDENCE = frozenset({"bulk", "list"})
_LIST_HEADERS = ("List-Id", "List-Unsubscribe", "List-Post")


def list_signal(mail: ParsedMail) -> str | None:
    """The header that shows `mail` is list or bulk traffic, or None."""
    for name in ("Precedence", "X-Precedence"):
        precedence = header_text(mail, name)
        if precedence in _BULK_PRECEDENCE:
            return f"{name}: {precedence}"
    for name in _LIST_HEADERS:
        value = mail.header(name)
        if value is not None:
            return f"{name} header present ({value[:60]})" if value else f"{name} header present"
    return None
