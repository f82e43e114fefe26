"""Alembic environment: migrations run on the connection maild hands over."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

import maild.models  # noqa: F401  (registers the tables on SQLModel.metadata)

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("maild migrations run through maild.db.migrate(), not the alembic command")

context.configure(
    connection=connection,
    target_metadata=SQLModel.metadata,
    render_as_batch=True,  # SQLite alters tables by copying them
)
with context.begin_transaction():
    context.run_migrations()
