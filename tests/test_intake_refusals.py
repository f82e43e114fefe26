"""`maild ingest` and `deliver` take mail only: no header block or over the size limit is refused.

Each refusal is one clear line naming the input and the reason; nothing of a
refused input is stored or processed, and the rest of a directory goes on.
"""

from __future__ import annotations

import mailbox
import sqlite3
import sys
from pathlib import Path

from tests.conftest import MaildCLI
from tests.mailmaker import support_mail

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06" + b"\x00" * 64
SMALL_LIMIT = {"MAILD_SMTP_MAX_MESSAGE_SIZE": "4000"}


def _rows(maild: MaildCLI, table: str) -> int:
    database = maild.cwd / "var" / "maild.db"
    if not database.exists():
        return 0
    with sqlite3.connect(database) as connection:
        return int(connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


def test_ingest_of_non_mail_files_refuses_each_and_processes_nothing(maild: MaildCLI) -> None:
    (maild.cwd / "picture.png").write_bytes(PNG)
    (maild.cwd / "note.txt").write_bytes(b"remember to call the customer\n")
    program = Path(sys.executable).resolve()
    result = maild("ingest", "picture.png", "note.txt", str(program))
    assert result.code == 1
    for name in ("picture.png", "note.txt", str(program)):
        assert f"maild: not stored: {name}: refused: not a mail message" in result.stderr
    assert "stored 0" in result.stdout and "refused 3" in result.stdout
    assert "Traceback" not in result.stderr
    assert _rows(maild, "inbound") == 0
    assert _rows(maild, "ticket") == 0


def test_ingest_of_a_directory_says_which_files_it_skipped(maild: MaildCLI) -> None:
    folder = maild.cwd / "mail"
    folder.mkdir()
    (folder / "a-real.eml").write_bytes(support_mail(subject="Bokningen"))
    (folder / "b-image.eml").write_bytes(PNG)
    (folder / "c-line.eml").write_bytes(b"just one line of text")
    result = maild("ingest", str(folder))
    assert result.code == 1
    assert f"{folder / 'b-image.eml'}: refused: not a mail message" in result.stderr
    assert f"{folder / 'c-line.eml'}: refused: not a mail message" in result.stderr
    assert "a-real.eml" not in result.stderr
    assert "stored 1" in result.stdout and "refused 2" in result.stdout
    assert _rows(maild, "ticket") == 1


def test_ingest_refuses_a_message_over_the_size_limit(maild: MaildCLI) -> None:
    (maild.cwd / "big.eml").write_bytes(support_mail(body="x" * 5000 + "\n"))
    (maild.cwd / "small.eml").write_bytes(support_mail(subject="liten"))
    box = mailbox.mbox(maild.cwd / "archive.mbox")
    box.add(support_mail(subject="stor i mbox", body="y" * 5000 + "\n"))
    box.add(support_mail(subject="liten i mbox"))
    box.close()
    result = maild("ingest", "big.eml", "small.eml", "archive.mbox", extra_env=SMALL_LIMIT)
    assert result.code == 1
    assert "big.eml: refused: " in result.stderr
    assert "is larger than the limit of 4000 bytes (smtp.max_message_size = 4000 bytes)" in (
        result.stderr)
    assert "archive.mbox#1: refused" in result.stderr
    assert "archive.mbox#2" not in result.stderr
    assert "stored 2" in result.stdout
    assert _rows(maild, "inbound") == 2


def test_deliver_refuses_an_oversize_message_without_storing(maild: MaildCLI) -> None:
    result = maild("deliver", "--to", "support@example.se", extra_env=SMALL_LIMIT,
                   input=support_mail(body="x" * 10_000 + "\n"))
    assert result.code == 65
    assert "larger than the limit of 4000 bytes" in result.stderr
    assert _rows(maild, "inbound") == 0


def test_deliver_refuses_non_mail_without_storing(maild: MaildCLI) -> None:
    result = maild("deliver", "--to", "support@example.se", input=PNG)
    assert result.code == 65
    assert "not a mail message" in result.stderr
    assert _rows(maild, "inbound") == 0
    fine = maild("deliver", "--to", "support@example.se", input=support_mail())
    assert fine.code == 0, fine.stderr
