"""`campaign_number`: the sender names the campaign the case concerns by its number.

Definition: a campaign word ("kampanj", "kampanjen", "kampanjnummer",
"kampanjnumret", "kampanjnr", "kampanj-id", "julkampanj", "campaign", "campaign
number/no./id") followed, after at most "nr", "nummer", "no.", "number", "id",
"#", ":", "är" or "is", by an identifier with at least three digits:
"kampanjnummer 48213", "kampanj nr: K-2026-118", "campaign no. K-2026-131",
"kampanj 49102", "kampanjnumret är 50211". A bare year
("kampanjen 2026") and a campaign without a number ("vår nya kampanj") do not
count. The sender's own text is read, and the subject unless it is a reply or
forward (whose subject repeats an earlier message).
"""

from __future__ import annotations

import re

from maild.checks.quoting import BodyParts
from maild.checks.result import ItemResult, found, missing
from maild.classify.evidence import is_reply_or_forward
from maild.parse import ParsedMail

ITEM = "campaign_number"

_CAMPAIGN = re.compile(
    r"\b(?:[^\W\d_]*kampanj(?:en|er|erna|ens)?(?:-?(?:numret|nummer|nr|id))?|"
    r"campaign(?:\s*(?:number|no|nr|id|#))?)"
    r"\.?(?:\s*(?:nummer|nr|no|number|id)\b\.?)?(?:\s*[:#=|])?\s*(?:(?:är|is)\s+)?"
    r"(?P<id>(?:[A-Z]{1,4}-?)?\d+(?:-\d+){0,3})\b",
    re.IGNORECASE)
_YEAR = re.compile(r"^(?:19|20)\d\d$")
_MIN_DIGITS = 3


def detect_campaign_number(mail: ParsedMail, body: BodyParts) -> ItemResult:
    """Present when the sender's own text (or a new subject) names a campaign by number."""
    sources = [body.own]
    if not is_reply_or_forward(mail.subject):
        sources.append(mail.subject)
    for text in sources:
        for match in _CAMPAIGN.finditer(text):
            identifier = match.group("id")
            digits = sum(ch.isdigit() for ch in identifier)
            if digits >= _MIN_DIGITS and not _YEAR.match(identifier):
                return found(ITEM, match.group(0))
    return missing(ITEM)
