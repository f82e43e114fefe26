"""A table for inbound messages' bytes kept apart from their row (used on SQLite).

Revision ID: 0012_inbound_raw
Revises: 0011_outbox_dot
Create Date: 2026-11-30

Only adds: `inbound.raw` stays, and holds the bytes of every message stored
before, and on PostgreSQL of every message (see `maild.inbound_bytes`).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012_inbound_raw"
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


def downgrade() -> None:
    op.execute("UPDATE inbound SET raw = (SELECT raw FROM inbound_raw "
               "WHERE inbound_raw.inbound_id = inbound.id) "
               "WHERE id IN (SELECT inbound_id FROM inbound_raw)")
    op.drop_table("inbound_raw")
