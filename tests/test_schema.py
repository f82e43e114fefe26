"""The alembic migrations build exactly the schema the models describe, on both databases."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, inspect
from sqlmodel import SQLModel

import maild.models  # noqa: F401 - registers every table on SQLModel.metadata
from maild.db import _alembic_config, make_engine, open_database, schema_is_current
from maild.runtime import open_runtime
from tests.conftest import make_config


def test_migrations_build_the_schema_of_the_models(database_url: str, tmp_path: Path) -> None:
    runtime = open_runtime(make_config(tmp_path, database_url))
    with runtime.engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection),
                                       SQLModel.metadata)
    runtime.engine.dispose()
    assert differences == []


def test_an_older_database_is_migrated_when_opened(database_url: str) -> None:
    script = ScriptDirectory.from_config(_alembic_config())
    previous = script.get_revision(script.get_current_head()).down_revision
    engine = make_engine(database_url)
    config = _alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, str(previous))
    assert not schema_is_current(engine)
    open_database(database_url).dispose()
    assert schema_is_current(engine)
    engine.dispose()


def test_a_current_database_opens_without_loading_alembic(database_url: str) -> None:
    open_database(database_url).dispose()  # creates the schema
    opened = subprocess.run(
        [sys.executable, "-c", "import sys; from maild.db import open_database; "
         "open_database(sys.argv[1]).dispose(); print('alembic' in sys.modules)", database_url],
        capture_output=True, text=True, check=True, timeout=60)
    assert opened.stdout.strip() == "False"


def test_the_migrations_form_one_line() -> None:
    heads = ScriptDirectory.from_config(_alembic_config()).get_heads()
    assert len(heads) == 1, f"several heads: {heads}"


# Revisions from before rolling upgrades were promised; every later one must only add.
ROLLING_BASELINE = "0001"


def _columns(connection: Connection) -> dict[str, dict[str, tuple[bool, bool]]]:
    """Each table's columns: (nullable, has a server default)."""
    inspector = inspect(connection)
    return {table: {column["name"]: (bool(column["nullable"]),
                                     column.get("default") is not None
                                     or bool(column.get("autoincrement") is True))
                    for column in inspector.get_columns(table)}
            for table in inspector.get_table_names() if table != "alembic_version"}


def _unsafe_changes(before: dict[str, dict[str, tuple[bool, bool]]],
                    after: dict[str, dict[str, tuple[bool, bool]]]) -> list[str]:
    """What in `after` would break a maild that knows only `before` (writing or reading)."""
    problems: list[str] = []
    for table, columns in before.items():
        if table not in after:
            problems.append(f"table {table} dropped or renamed")
            continue
        for name, (nullable, _default) in columns.items():
            if name not in after[table]:
                problems.append(f"column {table}.{name} dropped or renamed")
            elif nullable and not after[table][name][0] and not after[table][name][1]:
                problems.append(f"column {table}.{name} became NOT NULL without a default")
        for name, (nullable, default) in after[table].items():
            if name not in columns and not nullable and not default:
                problems.append(f"column {table}.{name} added NOT NULL without a server default")
    return problems


def test_every_migration_after_the_baseline_only_adds(database_url: str) -> None:
    """A rolling upgrade runs old instances on the new schema: a migration may add tables,
    nullable columns and columns with a server default, and nothing else."""
    config = _alembic_config()
    script = ScriptDirectory.from_config(config)
    revisions = [revision.revision for revision in reversed(list(script.walk_revisions()))]
    assert ROLLING_BASELINE in revisions
    engine = make_engine(database_url)
    found: dict[str, list[str]] = {}
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        before: dict[str, dict[str, tuple[bool, bool]]] | None = None
        for revision in revisions:
            command.upgrade(config, revision)
            after = _columns(connection)
            if before is not None and revisions.index(revision) > revisions.index(
                    ROLLING_BASELINE):
                found[revision] = _unsafe_changes(before, after)
            before = after
    engine.dispose()
    assert {revision: problems for revision, problems in found.items() if problems} == {}


def test_the_rolling_upgrade_check_catches_what_breaks_an_old_instance() -> None:
    before = {"ticket": {"id": (False, True), "subject": (True, False)}}
    assert _unsafe_changes(before, {"ticket": {"id": (False, True)}}) == [
        "column ticket.subject dropped or renamed"]
    assert _unsafe_changes(before, {"ticket": {"id": (False, True), "subject": (True, False),
                                               "queue": (False, False)}}) == [
        "column ticket.queue added NOT NULL without a server default"]
    assert _unsafe_changes(before, {"ticket": {"id": (False, True), "subject": (True, False),
                                               "queue": (False, True), "note": (True, False)}},
                           ) == []
    assert _unsafe_changes(before, {}) == ["table ticket dropped or renamed"]
