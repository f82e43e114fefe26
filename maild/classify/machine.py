"""Machine-generated mail: bounces, complaints, auto-replies, list traffic, maild's own mail.

`classify_machine` returns the kind and the signal that decided it, or None
for mail a person wrote. Answering any of these kinds starts mail loops, so
maild never acknowledges them.

The order of the checks is part of the meaning: maild's own mail first; a
complaint before a bounce (feedback loops send from daemon accounts); a bounce
(a report or a mail system's own format first, then a gateway's plain notice)
before an auto-reply (Postfix and Exim mark their bounces `Auto-Submitted:
auto-replied`); auto-replies before list traffic; and the null envelope sender
last, because RFC 3834 auto-replies use it as well as bounces do.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from maild.classify.autoreply import autoreply_signal
from maild.classify.bounce import bounce_signal, null_sender_signal
from maild.classify.complaint import complaint_signal
from maild.classify.gateway import gateway_bounce_signal
from maild.classify.listmail import list_signal
from maild.classify.loop import LOOP_HEADER, loop_signal
from maild.parse import ParsedMail

__all__ = ["LOOP_HEADER", "MachineVerdict", "classify_machine"]


@dataclass(frozen=True)
class MachineVerdict:
    """The kind of machine mail and the signal (header or rule) that showed it."""

    kind: str      # "bounce", "complaint", "autoreply", "list" or "loop"
    signal: str


def classify_machine(
    mail: ParsedMail,
    envelope_sender: str | None,
    own_domains: frozenset[str] = frozenset(),
    own_addresses: frozenset[str] = frozenset(),
) -> MachineVerdict | None:
    """The machine kind of `mail` with its deciding signal, or None when a person wrote it.

    `envelope_sender` is "" for the null sender `<>` and None when unknown.
    """
    checks: tuple[tuple[str, Callable[[], str | None]], ...] = (
        ("loop", lambda: loop_signal(mail, own_domains, own_addresses)),
        ("complaint", lambda: complaint_signal(mail)),
        ("bounce", lambda: bounce_signal(mail, envelope_sender)),
        ("bounce", lambda: gateway_bounce_signal(mail, envelope_sender)),
        ("autoreply", lambda: autoreply_signal(mail)),
        ("list", lambda: list_signal(mail)),
        ("bounce", lambda: null_sender_signal(envelope_sender)),
    )
    for kind, check in checks:
        signal = check()
        if signal is not None:
            return MachineVerdict(kind, signal)
    return None
