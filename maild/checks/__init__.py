"""Required information of a support case: one detector per item, each with a written definition.

`check_items(mail, items)` answers, for each item a policy requires, whether the
message has it and what showed it. The definitions are in the detectors'
modules:

| item | module |
| --- | --- |
| `description` | `maild.checks.description` |
| `screenshot` | `maild.checks.screenshot` |
| `occurred_at` | `maild.checks.occurrence` |
| `browser`, `os` | `maild.checks.software` |
| `campaign_number` | `maild.checks.campaign` |
| `company` | `maild.checks.company` |
| `contact_name_title`, `contact_details` | `maild.checks.contact` |

Every detector reads the body as `maild.checks.quoting.split_body` splits it:
the sender's new text and signature count, quoted replies and forwarded earlier
messages do not. Headers never count (a User-Agent names the mail client, not
the browser). `ITEM_WORDS` names each item in plain Swedish and English for
the acknowledgement that asks for what is missing.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import MappingProxyType

from maild.checks.campaign import detect_campaign_number
from maild.checks.company import detect_company
from maild.checks.contact import detect_contact_details, detect_contact_name_title
from maild.checks.description import detect_description
from maild.checks.occurrence import detect_occurred_at
from maild.checks.quoting import BodyParts, split_body
from maild.checks.result import Detector, ItemResult
from maild.checks.screenshot import detect_screenshot
from maild.checks.software import detect_browser, detect_os
from maild.parse import ParsedMail

__all__ = ["ITEM_WORDS", "KNOWN_ITEMS", "BodyParts", "ItemResult", "check_items", "split_body"]

_DETECTORS: MappingProxyType[str, Detector] = MappingProxyType({
    "description": detect_description,
    "screenshot": detect_screenshot,
    "occurred_at": detect_occurred_at,
    "browser": detect_browser,
    "os": detect_os,
    "campaign_number": detect_campaign_number,
    "company": detect_company,
    "contact_name_title": detect_contact_name_title,
    "contact_details": detect_contact_details,
})

KNOWN_ITEMS: tuple[str, ...] = tuple(_DETECTORS)

ITEM_WORDS: dict[str, dict[str, str]] = {
    "description": {
        "sv": "en utförligare beskrivning av problemet",
        "en": "a more detailed description of the problem",
    },
    "screenshot": {
        "sv": "en skärmbild som visar felet",
        "en": "a screenshot that shows the error",
    },
    "occurred_at": {
        "sv": "när felet inträffade (datum och klockslag)",
        "en": "when the error occurred (date and time)",
    },
    "browser": {
        "sv": "vilken webbläsare och version du använder",
        "en": "which browser and version you are using",
    },
    "os": {
        "sv": "vilket operativsystem och version du använder",
        "en": "which operating system and version you are using",
    },
    "campaign_number": {
        "sv": "kampanjnumret",
        "en": "the campaign number",
    },
    "company": {
        "sv": "företagets namn",
        "en": "your company's name",
    },
    "contact_name_title": {
        "sv": "ditt namn och din befattning",
        "en": "your name and job title",
    },
    "contact_details": {
        "sv": "dina kontaktuppgifter (telefonnummer)",
        "en": "your contact details (phone number)",
    },
}


def check_items(mail: ParsedMail, items: Sequence[str], *,
                no_machine_signal: bool = False) -> list[ItemResult]:
    """Each of `items` present or missing in `mail`, in the order given.

    `no_machine_signal`: `classify_machine` found none in `mail` (the description check
    then does not ask again). Raises ValueError naming an unknown item (the known ones
    are `KNOWN_ITEMS`).
    """
    unknown = [item for item in items if item not in _DETECTORS]
    if unknown:
        raise ValueError(f"unknown required item {unknown[0]!r} "
                         f"(known: {', '.join(KNOWN_ITEMS)})")
    if not items:
        return []
    body = split_body(mail.text, mail.sender.name if mail.sender else "")
    return [detect_description(mail, body, no_machine_signal=no_machine_signal)
            if item == "description" else _DETECTORS[item](mail, body) for item in items]
