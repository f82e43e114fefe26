"""Database engine and schema migration for SQLite (embedded) and PostgreSQL.

alembic is imported only when there is something to migrate: a database already
at the newest revision is recognised without it, so a restarted daemon does not
carry alembic (and the template engine it loads) in its memory.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import configure_mappers

from maild.json_columns import dump_json
from maild.log import get_logger
from maild.schema_head import schema_head

if TYPE_CHECKING:
    from alembic.config import Config as AlembicConfig

log = get_logger("maild.db")

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# A fixed key for pg_advisory_xact_lock, so that two instances starting at once
# migrate one after the other.
_MIGRATION_LOCK_KEY = 0x6D61696C64


class StorageError(Exception):
    """The database could not be reached or written; the caller should retry later."""


def _configure_sqlite(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    # FULL: a commit survives a power loss, which is what "stored" promises.
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def make_engine(url: str, *, create_dir: bool = True) -> Engine:
    """An engine for `url`; SQLite gets WAL, full sync, foreign keys and a busy timeout."""
    if url.startswith("sqlite:///"):
        path = Path(url[len("sqlite:///"):])
        if create_dir:
            path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 5}, json_serializer=dump_json)
        event.listen(engine, "connect", _configure_sqlite)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5,
                         json_serializer=dump_json)


def _alembic_config() -> AlembicConfig:
    from alembic.config import Config as AlembicConfig

    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def migrate(engine: Engine) -> None:
    """Bring the schema up to the newest revision; safe when several instances start at once."""
    from alembic import command

    config = _alembic_config()
    try:
        with engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"),
                                   {"key": _MIGRATION_LOCK_KEY})
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    except SQLAlchemyError as error:
        raise _schema_error(error) from error


def _schema_error(error: SQLAlchemyError) -> StorageError:
    return StorageError(f"cannot prepare the database schema: {error.__class__.__name__}: "
                        f"{error.orig if hasattr(error, 'orig') else error}")


def schema_is_current(engine: Engine) -> bool:
    """Whether the database is at the newest schema revision (reads only)."""
    with engine.connect() as connection:
        if not inspect(connection).has_table("alembic_version"):
            return False
        current = connection.execute(text("SELECT version_num FROM alembic_version")).all()
    return [row[0] for row in current] == [schema_head()]


def open_database(url: str) -> Engine:
    """An engine on `url` with the schema migrated to the newest revision.

    The ORM's mappers are configured here, at start, rather than by the first write
    that needs them: that would be the first message an SMTP client hands over.
    """
    engine = make_engine(url)
    try:
        current = schema_is_current(engine)
    except SQLAlchemyError as error:
        raise _schema_error(error) from error
    if not current:
        migrate(engine)
    configure_mappers()
    return engine
