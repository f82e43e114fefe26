"""README.md's fenced blocks, found by their first line, for tests that use them word for word."""

from __future__ import annotations

import re

from tests.conftest import ROOT

README = ROOT / "README.md"
_FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)


def readme_blocks(first_line: str, section: str | None = None) -> list[str]:
    """Every fenced block (after the heading `section`, up to the next heading of its level)
    whose first line is `first_line`."""
    text = README.read_text(encoding="utf-8")
    if section is not None:
        start = text.index(section)
        level = section.split(" ", 1)[0]
        following = re.search(rf"^{re.escape(level)} ", text[start + len(section):],
                              re.MULTILINE)
        end = start + len(section) + following.start() if following else len(text)
        text = text[start:end]
    return [block for block in _FENCE.findall(text) if block.split("\n", 1)[0] == first_line]


def readme_block(first_line: str, section: str | None = None) -> str:
    """The one fenced block starting with `first_line` (in `section`); fails if not exactly one."""
    found = readme_blocks(first_line, section)
    assert len(found) == 1, f"README.md has {len(found)} blocks starting {first_line!r}"
    return found[0]
