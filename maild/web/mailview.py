"""A stored message as the ticket page shows it: headers, readable text, attachments.

HTML is never passed to the browser: it becomes text (scripts and styles
dropped), and the template escapes everything. Attachments are numbered in
the order the MIME tree is walked, the same walk that serves their bytes.
"""

from __future__ import annotations

import email
import email.policy
from dataclasses import dataclass
from email.message import Message

from maild.htmltext import html_to_text
from maild.parse import UnparseableMail, decode_header_value, parse_mail


@dataclass(frozen=True)
class AttachmentView:
    """One attached file: its number on the message, name, type and size."""

    index: int
    filename: str
    content_type: str
    size: int


@dataclass(frozen=True)
class MessageView:
    """What the ticket page shows of one message."""

    sender: str
    to: str
    subject: str
    text: str
    from_html: bool
    attachments: tuple[AttachmentView, ...]


def _attachment_parts(message: Message) -> list[Message]:
    parts = []
    for part in message.walk():
        if part.is_multipart():
            continue
        disposition = (part.get("Content-Disposition") or "").lower()
        if part.get_filename() or disposition.startswith("attachment"):
            parts.append(part)
    return parts


def _name(part: Message, index: int) -> str:
    raw = part.get_filename()
    name = decode_header_value(raw) if raw else ""
    name = "".join(ch for ch in name if ch.isprintable()).replace("/", "_").replace("\\", "_")
    return name.strip() or f"attachment-{index}"


def view_message(raw: bytes) -> MessageView:
    """The readable form of `raw`; a message nothing can parse shows as its raw text."""
    message = email.message_from_bytes(raw, policy=email.policy.compat32)
    attachments = tuple(
        AttachmentView(index=index, filename=_name(part, index),
                       content_type=part.get_content_type(),
                       size=len(part.get_payload(decode=True) or b""))
        for index, part in enumerate(_attachment_parts(message), start=1))
    try:
        parsed = parse_mail(raw)
    except UnparseableMail:
        return MessageView(sender="", to="", subject="", attachments=attachments,
                           text=raw.decode("utf-8", "replace")[:100_000], from_html=False)
    text, from_html = parsed.text, False
    if not text.strip() and parsed.html:
        text, from_html = html_to_text(parsed.html), True
    sender = ""
    if parsed.sender:
        sender = (f"{parsed.sender.name} <{parsed.sender.address}>" if parsed.sender.name
                  else parsed.sender.address)
    return MessageView(sender=sender, to=", ".join(a.address for a in parsed.to),
                       subject=parsed.subject, text=text[:200_000], from_html=from_html,
                       attachments=attachments)


def attachment_bytes(raw: bytes, index: int) -> tuple[str, bytes] | None:
    """The file name and original (transfer-decoded) bytes of attachment `index`, if any."""
    message = email.message_from_bytes(raw, policy=email.policy.compat32)
    parts = _attachment_parts(message)
    if not 1 <= index <= len(parts):
        return None
    part = parts[index - 1]
    payload = part.get_payload(decode=True)
    return _name(part, index), payload if isinstance(payload, bytes) else b""
