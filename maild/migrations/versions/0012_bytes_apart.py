"""Tables for the bytes of inbound messages and outbox items, apart from their rows.

Revision ID: 0012_bytes_apart
Revises: 0011_outbox_dot
Create Date: 2026-11-30

Used on SQLite (see `maild.bytes_apart`). Only adds: `inbound.raw` and
`outbox.raw` stay, and hold the bytes of every mail stored before, and on
PostgreSQL of every mail.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012_bytes_apart"
down_revision = "0011_outbox_dot"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table, key in (("inbound_raw", "inbound"), ("outbox_raw", "outbox")):
        op.create_table(
            table,
            sa.Column(f"{key}_id", sa.Integer(), sa.ForeignKey(f"{key}.id"), primary_key=True,
                      autoincrement=False),
            sa.Column("raw", sa.LargeBinary(), nullable=False),
        )


def downgrade() -> None:
    for table, key in (("inbound_raw", "inbound"), ("outbox_raw", "outbox")):
        op.execute(f"UPDATE {key} SET raw = (SELECT raw FROM {table} "
                   f"WHERE {table}.{key}_id = {key}.id) "
                   f"WHERE id IN (SELECT {key}_id FROM {table})")
        op.drop_table(table)
