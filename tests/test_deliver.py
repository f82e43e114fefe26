"""`maild deliver` as an MTA runs it: any number of recipients, and only exit 0, 65 or 75.

Postfix bounces customer mail on any other exit code and puts what deliver
printed into its log and the bounce notice, so every storage or configuration
problem must be 75 with one plain line, never 1 and never a traceback.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import Session, select

from maild.cli import OUTBOX_STATES, TICKET_STATUSES
from maild.models import Inbound, InboundRaw, OutboxState, TicketStatus
from maild.schema_head import schema_head
from maild.transports.pipe import store_sqlite
from tests.conftest import MaildCLI, make_config
from tests.mailmaker import support_mail
from tests.pipeline_helpers import stored_bytes


def _rows(maild: MaildCLI, sql: str, data: Path | None = None) -> list[tuple[object, ...]]:
    path = (data or maild.cwd / "var") / "maild.db"
    with sqlite3.connect(path) as connection:
        return connection.execute(sql).fetchall()


def _assert_tempfail(result: object) -> None:
    code, stdout, stderr = (getattr(result, name) for name in ("code", "stdout", "stderr"))
    assert code == 75, (code, stdout, stderr)
    assert "Traceback" not in stdout + stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("maild: "), stderr
    assert "{" not in stderr, "no JSON log line goes to the MTA"


def test_any_number_of_recipients_is_one_inbound_message(maild: MaildCLI) -> None:
    raw = support_mail()
    result = maild("deliver", "--from=anna.lind@bergstromsbygg.se", "--",
                   "support@example.se", "teknik@example.se", "-weird@example.se", input=raw)
    assert result.code == 0, result.stderr
    assert result.stdout == "stored as inbound 1\n"
    assert result.stderr == ""
    [(sender, recipients, state)] = _rows(
        maild, "SELECT envelope_sender, envelope_recipients, state FROM inbound")
    assert sender == "anna.lind@bergstromsbygg.se"
    assert json.loads(str(recipients)) == ["support@example.se", "teknik@example.se",
                                           "-weird@example.se"]
    assert state == "received", "deliver only stores; the worker processes"
    again = maild("deliver", "--to", "faktura@example.se",
                  input=b"Delivered-To: faktura@example.se\r\n" + raw)
    assert again.stdout == "already stored as inbound 1\n"
    [(merged,)] = _rows(maild, "SELECT envelope_recipients FROM inbound")
    assert "faktura@example.se" in json.loads(str(merged))
    assert len(_rows(maild, "SELECT id FROM inbound")) == 1
    assert "processed 1" in maild("process").stdout
    assert len(_rows(maild, "SELECT id FROM ticket")) == 1


def test_the_null_sender_is_stored_empty(maild: MaildCLI) -> None:
    assert maild("deliver", "--from=", "support@example.se", input=support_mail()).code == 0
    assert _rows(maild, "SELECT envelope_sender FROM inbound") == [("",)]


def test_a_wrong_command_line_is_75_not_2(maild: MaildCLI) -> None:
    _assert_tempfail(maild("deliver", "--bogus", "support@example.se", input=support_mail()))
    _assert_tempfail(maild("deliver", "--from", input=support_mail()))
    _assert_tempfail(maild("--config", "x.toml", "deliver", "--bogus", input=support_mail()))
    assert maild("--bogus").code == 2, "other commands keep exit 2 for usage errors"


def test_a_broken_configuration_is_75(maild: MaildCLI) -> None:
    config = maild.cwd / "maild.toml"
    config.write_text("[smtp\nlisten = 1\n")
    _assert_tempfail(maild("deliver", "support@example.se", input=support_mail()))
    config.write_text("[processing]\nmax_attempts = 'many'\n")
    result = maild("deliver", "support@example.se", input=support_mail())
    _assert_tempfail(result)
    assert "processing.max_attempts" in result.stderr
    config.unlink()
    _assert_tempfail(maild("deliver", "support@example.se", input=support_mail(),
                           extra_env={"MAILD_DATABASE_URL": "mysql://nope"}))


def test_a_missing_rules_directory_does_not_stop_storing(maild: MaildCLI) -> None:
    missing = maild.cwd / "no-such-rules"
    result = maild("--rules-dir", str(missing), "deliver", "support@example.se",
                   input=support_mail())
    assert result.code == 0 and result.stdout == "stored as inbound 1\n"
    later = maild("--rules-dir", str(missing), "deliver", "--process", "support@example.se",
                  input=support_mail(subject="other"))
    assert later.code == 0, later.stderr
    assert "stored as inbound 2; processing deferred" in later.stdout
    assert "Traceback" not in later.stdout + later.stderr


def test_an_unreachable_postgresql_is_75(maild: MaildCLI) -> None:
    _assert_tempfail(maild("deliver", "support@example.se", input=support_mail(), extra_env={
        "MAILD_DATABASE_URL": "postgresql+psycopg://maild@127.0.0.1:1/maild"}))


# --- a data directory that cannot be written, and a full disk ---------------------------------

def _mount_tmpfs(path: Path, options: str) -> None:
    if shutil.which("mount") is None or os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root and mount(8); skipped")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)],
                          capture_output=True, text=True, timeout=30, check=False)
    if done.returncode != 0:
        pytest.skip(f"mount -t tmpfs is not permitted here: {done.stderr.strip()}")


@pytest.fixture
def small_disk(maild: MaildCLI) -> Iterator[Path]:
    """maild's data directory on a 2 MiB tmpfs of its own, unmounted afterwards."""
    data = maild.cwd / "var"
    data.mkdir()
    _mount_tmpfs(data, "size=2m,mode=0755")
    try:
        yield data
    finally:
        subprocess.run(["umount", "-l", str(data)], check=False, timeout=30)


def test_an_unwritable_data_directory_is_75(maild: MaildCLI, small_disk: Path) -> None:
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True, timeout=30)
    result = maild("deliver", "support@example.se", input=support_mail())
    _assert_tempfail(result)  # no database yet: the full path cannot create it
    subprocess.run(["mount", "-o", "remount,rw", str(small_disk)], check=True, timeout=30)
    assert maild("deliver", "support@example.se", input=support_mail()).code == 0
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True, timeout=30)
    _assert_tempfail(maild("deliver", "support@example.se",  # the database is read-only
                           input=support_mail(subject="another")))
    subprocess.run(["mount", "-o", "remount,rw", str(small_disk)], check=True, timeout=30)
    assert len(_rows(maild, "SELECT id FROM inbound")) == 1


def test_a_full_disk_is_75_and_the_message_is_stored_once_there_is_room(
        maild: MaildCLI, small_disk: Path) -> None:
    assert maild("deliver", "support@example.se", input=support_mail()).code == 0
    filler = small_disk / "filler"
    with filler.open("wb") as handle:
        try:
            while True:
                handle.write(b"\0" * 65536)
                handle.flush()
        except OSError:
            pass
    big = support_mail(subject="stor bilaga", body="Se bilagan.\n" + "x" * 76 * 4000)
    result = maild("deliver", "support@example.se", input=big)
    _assert_tempfail(result)
    filler.unlink()
    retry = maild("deliver", "support@example.se", input=big)
    assert retry.code == 0, retry.stderr
    assert len(_rows(maild, "SELECT id FROM inbound")) == 2


# --- the quick path writes what the full path would --------------------------------------------

def test_quick_store_writes_the_row_the_models_read(tmp_path: Path) -> None:
    from maild.runtime import open_runtime

    config = make_config(tmp_path)
    runtime = open_runtime(config)
    try:
        assert config.sqlite_path is not None
        raw = support_mail(message_id="<quick@bergstromsbygg.se>")
        stored = store_sqlite(config.sqlite_path, raw, sender="",
                              recipients=["Support@Example.se", " "])
        assert stored is not None and not stored.duplicate
        again = store_sqlite(config.sqlite_path, b"Received: by relay\r\n" + raw,
                             sender=None, recipients=["teknik@example.se"])
        assert again is not None and again.duplicate and again.inbound_id == stored.inbound_id
        with Session(runtime.engine) as session:
            [row] = session.exec(select(Inbound)).all()
            assert row.size == len(raw)
            assert stored_bytes(runtime, row.id) == raw
            assert row.envelope_sender == ""
            assert row.envelope_recipients == ["support@example.se", "teknik@example.se"]
            assert row.message_id == "quick@bergstromsbygg.se"
            assert row.transport == "pipe" and row.state == "received"
            assert row.duplicates == 1 and row.attempts == 0
            assert row.received_at.tzinfo is not None
        processed = runtime.processor().run_pending()
        assert processed["processed"] == 1
    finally:
        runtime.engine.dispose()


def test_quick_store_sets_every_required_column() -> None:
    written = {
        Inbound: {"received_at", "transport", "envelope_recipients", "raw", "size",
                  "idempotency_key", "state", "attempts", "duplicates"},
        InboundRaw: {"inbound_id", "raw"},  # its key is the inbound id, not a new one
    }
    for model, columns in written.items():
        table = model.__table__  # type: ignore[attr-defined]
        required = {column.name for column in table.columns
                    if not column.nullable and column.default is None
                    and column.server_default is None
                    and not (column.primary_key and column.autoincrement is not False)}
        assert required <= columns, f"the quick store must also write {required - columns}"


def test_quick_store_leaves_a_new_database_and_an_old_schema_to_the_full_path(
        tmp_path: Path) -> None:
    path = tmp_path / "maild.db"
    assert store_sqlite(path, support_mail(), sender=None, recipients=[]) is None
    assert not path.exists(), "never creates a database"
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE alembic_version (version_num VARCHAR(32))")
        connection.execute("INSERT INTO alembic_version VALUES ('0001')")
    assert store_sqlite(path, support_mail(), sender=None, recipients=[]) is None


def test_schema_head_is_alembics_head() -> None:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from maild.db import MIGRATIONS_DIR

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    assert schema_head() == ScriptDirectory.from_config(config).get_current_head()


def test_deliver_does_not_load_the_pipeline(maild: MaildCLI) -> None:
    assert maild("deliver", "support@example.se", input=support_mail()).code == 0
    probe = ("import sys, io\nfrom maild.cli import main\n"
             "sys.stdin = io.TextIOWrapper(io.BytesIO(sys.argv[1].encode()))\n"
             "code = main(['deliver', 'support@example.se'])\n"
             "heavy = sorted(m for m in sys.modules if m.split('.')[0] in "
             "('sqlalchemy', 'sqlmodel', 'structlog', 'alembic', 'rich', 'mailparser') "
             "or m in ('maild.pipeline', 'maild.processing'))\n"
             "print(code, heavy)\n")
    done = subprocess.run([sys.executable, "-c", probe,
                           "Subject: probe\n\nhej\n"], cwd=maild.cwd, env=maild.env,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.stdout.strip().endswith("0 []"), done.stdout + done.stderr


def test_ticket_status_choices_match_the_model() -> None:
    assert TICKET_STATUSES == TicketStatus.ALL
    assert OUTBOX_STATES == OutboxState.ALL


def test_rules_addresses_for_postfix(maild: MaildCLI) -> None:
    plain = maild("rules", "addresses")
    assert plain.code == 0
    assert plain.stdout.split() == ["support@example.se", "teknik@example.se",
                                    "faktura@example.se"]
    table = maild("rules", "addresses", "--postfix")
    entries = [line.split("\t") for line in table.stdout.splitlines()
               if line and not line.startswith("#")]
    assert entries == [["support@example.se", "maild"], ["teknik@example.se", "maild"],
                       ["faktura@example.se", "maild"]]
    broken = maild.cwd / "broken"
    broken.mkdir()
    assert maild("--rules-dir", str(broken), "rules", "addresses", "--postfix").code == 78
