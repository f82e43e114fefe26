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
    op.create_table(
        "inbound_raw",
        sa.Column("inbound_id", sa.Integer(), sa.ForeignKey("inbound.id"), primary_key=True,
                  autoincrement=False),
        sa.Column("raw", sa.LargeBinary(), nullable=False),
    )
    op.create_table(
        "outbox_raw",
        sa.Column("outbox_id", sa.Integer(), sa.ForeignKey("outbox.id"), primary_key=True,
                  autoincrement=False),
        sa.Column("raw", sa.LargeBinary(), nullable=False),
        # A team copy refers to its original as stored: raw, then the original, then tail.
        sa.Column("original_id", sa.Integer(), sa.ForeignKey("inbound.id"), nullable=True),
        sa.Column("tail", sa.LargeBinary(), nullable=True),
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":  # only SQLite keeps bytes apart
        op.drop_table("outbox_raw")
        op.drop_table("inbound_raw")
        return
    op.execute("UPDATE outbox SET raw = (SELECT CASE WHEN o.original_id IS NULL THEN o.raw "
               "ELSE CAST(o.raw || coalesce(r.raw, i.raw) || o.tail AS BLOB) END "
               "FROM outbox_raw o LEFT JOIN inbound i ON i.id = o.original_id "
               "LEFT JOIN inbound_raw r ON r.inbound_id = o.original_id "
               "WHERE o.outbox_id = outbox.id) "
               "WHERE id IN (SELECT outbox_id FROM outbox_raw)")
    op.drop_table("outbox_raw")
    op.execute("UPDATE inbound SET raw = (SELECT raw FROM inbound_raw "
               "WHERE inbound_raw.inbound_id = inbound.id) "
               "WHERE id IN (SELECT inbound_id FROM inbound_raw)")
    op.drop_table("inbound_raw")
