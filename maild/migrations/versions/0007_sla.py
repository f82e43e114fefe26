"""The action target on tickets (work started): its deadline and when it was missed.

Revision ID: 0006_sla
Revises: 0006_leases
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import maild.models

revision = "0006_sla"
down_revision = "0006_leases"
branch_labels = None
depends_on = None

COLUMNS = ("action_due", "action_breached_at")


def upgrade() -> None:
    with op.batch_alter_table("ticket") as batch:
        for name in COLUMNS:
            batch.add_column(sa.Column(name, maild.models.UTCDateTime(timezone=True),
                                       nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("ticket") as batch:
        for name in reversed(COLUMNS):
            batch.drop_column(name)
