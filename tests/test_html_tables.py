"""HTML-only mail with tables: the label and the value of a row stay apart in the text."""

from __future__ import annotations

from maild.checks import check_items
from maild.htmltext import html_to_text
from maild.parse import parse_mail
from tests.mailmaker import support_mail

TABLE = ("<html><body><p>Hej!</p><p>Offertsidan laddar aldrig klart.</p>"
         "<table border=1><tr><td>Webbläsare</td><td>Chrome 131.0.6778.86</td></tr>"
         "<tr><td>Operativsystem</td><td>macOS Sequoia 15.1</td></tr>"
         "<tr><td><b>Kampanj-ID</b></td><td>K-2026-204</td></tr>"
         "<tr><td></td><td>   </td></tr></table></body></html>")


def test_table_cells_are_separated() -> None:
    text = html_to_text(TABLE)
    assert "Webbläsare | Chrome 131.0.6778.86" in text
    assert "Operativsystem | macOS Sequoia 15.1" in text
    assert "|  |" not in text and not any(line.startswith("|") or line.endswith("|")
                                           for line in text.splitlines())


def test_a_stray_separator_character_in_text_is_no_cell() -> None:
    assert html_to_text("<p>a\x1fb</p>") == "a b"


def test_detectors_read_values_from_table_cells() -> None:
    raw = support_mail(body="x").replace(b"Content-Type: text/plain", b"Content-Type: text/html")
    raw = raw.split(b"\n\n", 1)[0] + b"\n\n" + TABLE.encode("utf-8")
    mail = parse_mail(raw)
    found = {result.item: result.present
             for result in check_items(mail, ["browser", "os", "campaign_number"])}
    assert found == {"browser": True, "os": True, "campaign_number": True}
