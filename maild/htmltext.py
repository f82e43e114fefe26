"""Plain text from HTML mail bodies, for HTML-only messages."""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser

_BLOCK_TAGS = frozenset({
    "p", "div", "br", "li", "tr", "table", "h1", "h2", "h3", "h4", "h5", "h6",
    "blockquote", "pre", "hr", "ul", "ol", "section", "article", "header", "footer",
})
_SKIPPED_TAGS = frozenset({"script", "style", "head", "title"})
_CELL_TAGS = frozenset({"td", "th"})
_CELL_MARK = "\x1f"
"""Marks a cell's start while collecting; text never holds it (it is replaced in data)."""
_CELL_SEPARATOR = " | "
"""Between the cells of a table row, so that "Webbläsare" and "Chrome 131" stay two words."""


class _TextCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skip_depth = 0
        self.quote_depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIPPED_TAGS:
            self.skip_depth += 1
        elif tag == "blockquote":
            self.quote_depth += 1
            self.parts.append("\n")
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")
        elif tag == "img":
            alt = dict(attrs).get("alt")
            if alt:
                self.parts.append(f"[{alt}]")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIPPED_TAGS:
            self.skip_depth = max(0, self.skip_depth - 1)
        elif tag == "blockquote":
            self.quote_depth = max(0, self.quote_depth - 1)
            self.parts.append("\n")
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")
        elif tag in _CELL_TAGS:
            self.parts.append(_CELL_MARK)

    def handle_data(self, data: str) -> None:
        if self.skip_depth:
            return
        text = re.sub(r"\s+", " ", data.replace(_CELL_MARK, " "))
        if self.quote_depth and text.strip():
            text = "> " * self.quote_depth + text.strip()
        self.parts.append(text)


def _trim_cells(line: str) -> str:
    """A line without the cell separators at its ends and without empty cells."""
    cells = [cell.strip() for cell in line.split(_CELL_MARK)]
    if len(cells) == 1:
        return line.strip()
    return _CELL_SEPARATOR.join(cell for cell in cells if cell)


def html_to_text(markup: str) -> str:
    """The readable text of `markup`: blocks become lines, table cells are separated by ` | `,
    quotes get `> `, scripts vanish."""
    collector = _TextCollector()
    try:
        collector.feed(markup)
        collector.close()
    except (AssertionError, ValueError):
        # HTMLParser gives up on some broken markup; strip the tags instead.
        return html.unescape(re.sub(r"<[^>]*>", " ", markup)).strip()
    lines = [_trim_cells(line) for line in "".join(collector.parts).splitlines()]
    text = "\n".join(lines)
    return re.sub(r"\n{3,}", "\n\n", text).strip()
