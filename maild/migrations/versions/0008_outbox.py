"""The outbox claim: an item being delivered is held by one sender until its lease ends.

Revision ID: 0006_outbox
Revises: 0006_sla
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import maild.models

revision = "0006_outbox"
down_revision = "0006_sla"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("claimed_until", maild.models.UTCDateTime(timezone=True),
                                   nullable=True))
        batch.add_column(sa.Column("claim_token", sa.String(length=32), nullable=True))


def downgrade() -> None:
    # A downgraded maild knows no "sending" state: what was in flight waits again.
    op.execute("UPDATE outbox SET state = 'queued' WHERE state = 'sending'")
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("claim_token")
        batch.drop_column("claimed_until")
