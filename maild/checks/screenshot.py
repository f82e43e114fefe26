"""`screenshot`: the message carries a picture of the problem or a screen recording.

Definition: an attachment or inline part whose content type is `image/*` or
`video/*` (a screen recording), or `application/octet-stream` with an image or
video file name (.png, .jpg, .heic, .mp4, .mov ...), or an image embedded in the
HTML as a `data:` URI of at least `MIN_DATA_URI_BYTES`. Not counted: an image
under `LOGO_MAX_BYTES` whose file name or Content-ID says it is a logo, an icon
or a signature graphic ("logo.png", "image001-signature.gif", "linkedin.png"),
and smaller `data:` images, which are icons and spacers. Size alone never
rules an attachment out: a cropped screenshot can be a few hundred bytes.
"""

from __future__ import annotations

import re

from maild.checks.quoting import BodyParts
from maild.checks.result import ItemResult, found, missing
from maild.parse import Attachment, ParsedMail

ITEM = "screenshot"
LOGO_MAX_BYTES = 10 * 1024
MIN_DATA_URI_BYTES = 10 * 1024
_HTML_LIMIT = 8 * 1024 * 1024

_MEDIA_NAME = re.compile(
    r"\.(?:png|jpe?g|gif|bmp|webp|heic|heif|tiff?|mp4|mov|webm|mkv|avi|m4v)$", re.IGNORECASE)
_DECORATION = re.compile(
    r"logo|signature|signatur|\bsig\b|banner|icon|ikon|facebook|linkedin|twitter|instagram|"
    r"youtube|spacer|badge", re.IGNORECASE)
_DATA_URI = re.compile(r"data:(image/[\w.+-]+);base64,", re.IGNORECASE)
_BASE64_RUN = re.compile(r"[A-Za-z0-9+/=\s]*")


def detect_screenshot(mail: ParsedMail, body: BodyParts) -> ItemResult:
    """Present when an image or video part (not a small logo) is attached or inline."""
    for attachment in mail.attachments:
        if _is_picture(attachment) and not _is_decoration(attachment):
            return found(ITEM, describe(attachment))
    data_uri = _html_data_image(mail.html)
    if data_uri is not None:
        return found(ITEM, data_uri)
    return missing(ITEM)


def describe(attachment: Attachment) -> str:
    """'image/png skarmbild.png (12 kB)', 'image/png inline <cid> (174 B)'."""
    name = attachment.filename or (f"inline <{attachment.content_id}>"
                                   if attachment.content_id else "(no name)")
    return f"{attachment.content_type} {name} ({human_size(attachment.size)})"


def human_size(size: int) -> str:
    """174 B, 12 kB, 3.4 MB."""
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{round(size / 1024)} kB"
    return f"{size / (1024 * 1024):.1f} MB"


def _is_picture(attachment: Attachment) -> bool:
    kind = attachment.content_type.lower()
    if kind.startswith(("image/", "video/")):
        return True
    name = attachment.filename or ""
    return kind in {"application/octet-stream", "application/x-octet-stream"} and bool(
        _MEDIA_NAME.search(name))


def _is_decoration(attachment: Attachment) -> bool:
    if attachment.size >= LOGO_MAX_BYTES:
        return False
    labels = f"{attachment.filename or ''} {attachment.content_id or ''}"
    return _DECORATION.search(labels) is not None


def _html_data_image(html: str | None) -> str | None:
    if not html or "data:image" not in html[:_HTML_LIMIT].lower():
        return None
    text = html[:_HTML_LIMIT]
    for match in _DATA_URI.finditer(text):
        run = _BASE64_RUN.match(text, match.end())
        length = (run.end() - run.start()) if run else 0
        size = length * 3 // 4
        if size >= MIN_DATA_URI_BYTES:
            return f"{match.group(1).lower()} embedded in the HTML ({human_size(size)})"
    return None
