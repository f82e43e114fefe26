"""Leases: which instance may do a job that runs in one place at a time (IMAP polling).

Revision ID: 0006_leases
Revises: 0005
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import maild.models

revision = "0006_leases"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "lease",
        sa.Column("name", sa.String(length=640), nullable=False),
        sa.Column("holder", sa.String(length=255), nullable=False),
        sa.Column("expires_at", maild.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("renewed_at", maild.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )


def downgrade() -> None:
    op.drop_table("lease")
