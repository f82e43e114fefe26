"""The alembic migrations build exactly the schema the models describe, on both databases."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlmodel import SQLModel

import maild.models  # noqa: F401 - registers every table on SQLModel.metadata
from maild.db import _alembic_config
from maild.runtime import open_runtime
from tests.conftest import make_config


def test_migrations_build_the_schema_of_the_models(database_url: str, tmp_path: Path) -> None:
    runtime = open_runtime(make_config(tmp_path, database_url))
    with runtime.engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection),
                                       SQLModel.metadata)
    runtime.engine.dispose()
    assert differences == []


def test_the_migrations_form_one_line() -> None:
    heads = ScriptDirectory.from_config(_alembic_config()).get_heads()
    assert len(heads) == 1, f"several heads: {heads}"
