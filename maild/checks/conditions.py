"""Conditional required items: an item a policy asks for only when the case concerns something.

ClearOn wants the campaign number "vid ärende rörande en kampanj": a policy says
so in `[required_when]` (`campaign_number = ["kampanj", "campaign"]`). The item
is required when the sender's own text, or the subject of a new message (not a
reply or forward, whose subject repeats an earlier one), holds a word that
contains one of the mentions, case-insensitively: "kampanj" matches
"kampanjen", "julkampanj" and "Kampanjnummer". Quoted earlier messages do not
count, so a login question is not asked for a campaign number because the
previous mail in the thread was about a campaign.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from maild.checks.quoting import split_body
from maild.classify.evidence import is_reply_or_forward
from maild.parse import ParsedMail
from maild.routing.model import Policy, RequiredWhen

_WORD = re.compile(r"[^\W_]+(?:-[^\W_]+)*", re.UNICODE)


@dataclass(frozen=True)
class RequiredItems:
    """The items a message must contain, and why each conditional one is (or is not) asked."""

    items: tuple[str, ...]
    because: dict[str, str]


def _mention(text: str, condition: RequiredWhen) -> str | None:
    """The first word of `text` that contains one of the condition's mentions, if any."""
    for match in _WORD.finditer(text):
        word = match.group(0).lower()
        if any(mention in word for mention in condition.mentions):
            return match.group(0)
    return None


def required_items(policy: Policy, mail: ParsedMail,
                   conditions: Sequence[RequiredWhen] | None = None) -> RequiredItems:
    """The policy's always-required items, plus each conditional one whose case `mail` is."""
    wanted = list(conditions if conditions is not None else policy.required_when)
    items = list(policy.required)
    because: dict[str, str] = {}
    if not wanted:
        return RequiredItems(tuple(items), because)
    own = split_body(mail.text, mail.sender.name if mail.sender else "").own
    texts = [own] if is_reply_or_forward(mail.subject) else [mail.subject or "", own]
    for condition in wanted:
        word = next((found for text in texts if (found := _mention(text, condition))), None)
        if word is None:
            because[condition.item] = ("not asked: the case mentions none of "
                                       + ", ".join(condition.mentions))
            continue
        items.append(condition.item)
        because[condition.item] = f"asked: the case mentions '{word}'"
    return RequiredItems(tuple(items), because)
