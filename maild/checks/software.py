"""`browser` and `os`: the software the sender used, named with its version, in their own text.

Definitions:

- `browser`: a browser's name directly followed by a version number, optionally
  with "version"/"ver."/"v" or a bracket between: "Chrome 131", "Firefox
  128.0.3", "Safari 17", "Edge 120", "Chrome version 120", "Microsoft Edge
  v120", "Google Chrome (Version 131.0.6778.86)", "Internet Explorer 11",
  "Samsung Internet 23". A name alone ("Safari",
  "Firefox på min Mac") does not count, nor does a number after a comma
  ("i Chrome, 3 gånger"), nor a version of something else ("API v3", "iOS 17").
- `os`: an operating system with its version: "Windows 10", "Windows 11 Pro",
  "Windows Server 2022", "macOS 14", "macOS Sonoma", "Mac OS X 10.15", "iOS 17",
  "iPadOS 17.1", "Android 14", "Ubuntu 22.04", "Debian 12", "Fedora 39",
  "ChromeOS 120". "Windows", "Mac" or "min iPhone" alone do not count.

Only the sender's own text is read (quoted earlier mail is not); the
User-Agent and X-Mailer headers never count, they describe the mail client.
"""

from __future__ import annotations

import re

from maild.checks.quoting import BodyParts
from maild.checks.result import ItemResult, found, missing
from maild.parse import ParsedMail

# Each run of spaces has one place to go, so a failed match never backtracks through it.
_VERSION_WORD = r"\s*(?::\s*)?\(?(?:-?(?:version|ver\.?|v\.?)\s*(?::\s*)?)?"
_NUMBER = r"\d{1,3}(?:\.\d{1,5}){0,3}\b(?!\s?%)"

_BROWSER = re.compile(
    r"\b(?:(?:google\s+)?chrome|chromium|(?:mozilla\s+)?firefox(?:\s+esr)?|"
    r"(?:microsoft\s+|ms\s+)?(?-i:Edge)|(?i:microsoft\s+edge)|safari|opera(?:\s+gx)?|brave|"
    r"vivaldi|samsung\s+internet|internet\s+explorer|(?-i:IE)|yandex(?:\s+browser)?|"
    r"duckduckgo(?:\s+browser)?)"
    rf"{_VERSION_WORD}(?P<version>{_NUMBER})",
    re.IGNORECASE)

_MAC_NAMES = (r"tahoe|sequoia|sonoma|ventura|monterey|big\s+sur|catalina|mojave|high\s+sierra|"
              r"sierra|el\s+capitan|yosemite")
_OS = re.compile(
    r"\b(?:"
    r"windows\s*(?:server\s*)?(?:10|11|7|8(?:\.1)?|xp|vista|2000|2003|2008(?:\s*r2)?|"
    r"2012(?:\s*r2)?|2016|2019|2022|2025)\b(?:\s+(?:pro|home|enterprise|education|ltsc))?"
    r"|win\s?(?:10|11|7)\b"
    rf"|(?:mac\s?os(?:\s?x)?|os\s?x)\s*(?:version\s*)?(?:\d{{1,2}}(?:\.\d{{1,2}}){{0,2}}\b"
    rf"(?:\s*\(?(?:{_MAC_NAMES})\)?)?|(?:{_MAC_NAMES})\b)"
    r"|(?-i:i(?:Pad)?OS|IOS|iPhoneOS)\s*(?:version\s*)?\d{1,2}(?:\.\d{1,2}){0,2}\b"
    r"|android\s*(?:version\s*)?\d{1,2}(?:\.\d{1,2}){0,2}\b"
    r"|ubuntu\s+\d{2}\.\d{2}(?:\.\d{1,2})?(?:\s*lts)?\b"
    r"|(?:debian|fedora|centos|rhel|red\s+hat\s+enterprise\s+linux|rocky\s+linux|"
    r"alma\s*linux|linux\s+mint|opensuse\s+leap|pop!?_?os|elementary\s+os)\s+\d{1,2}(?:\.\d{1,2})?\b"
    r"|chrome\s?os\s*\d{2,3}\b"
    r")",
    re.IGNORECASE)


def detect_browser(mail: ParsedMail, body: BodyParts) -> ItemResult:
    """Present when the sender's own text names a browser with its version."""
    match = _BROWSER.search(body.own)
    if match is None:
        return missing("browser")
    text = match.group(0)
    return found("browser", f"{text})" if "(" in text else text)


def detect_os(mail: ParsedMail, body: BodyParts) -> ItemResult:
    """Present when the sender's own text names an operating system with its version."""
    match = _OS.search(body.own)
    return found("os", match.group(0)) if match else missing("os")
