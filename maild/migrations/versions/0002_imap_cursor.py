"""IMAP cursors: the UIDVALIDITY and last stored UID per account and folder.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import maild.models

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "imap_cursor",
        sa.Column("account", sa.String(length=128), nullable=False),
        sa.Column("folder", sa.String(length=512), nullable=False),
        sa.Column("uidvalidity", sa.BigInteger(), nullable=False),
        sa.Column("last_uid", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", maild.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("account", "folder"),
    )


def downgrade() -> None:
    op.drop_table("imap_cursor")
