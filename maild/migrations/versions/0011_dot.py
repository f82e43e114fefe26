"""The outbox's mark that a sender is about to end DATA (sending the final dot).

Revision ID: 0011_outbox_dot
Revises: 0006_web
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import maild.models

revision = "0011_outbox_dot"
down_revision = "0006_web"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("committing_at", maild.models.UTCDateTime(timezone=True),
                                   nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("committing_at")
