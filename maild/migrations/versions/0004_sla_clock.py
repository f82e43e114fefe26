"""The SLA clock on tickets: first response, breaches, warning, escalation, closing.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import maild.models

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

COLUMNS = ("first_response_at", "response_breached_at", "resolution_breached_at", "warned_at",
           "escalated_at", "closed_at")


def upgrade() -> None:
    with op.batch_alter_table("ticket") as batch:
        for name in COLUMNS:
            batch.add_column(sa.Column(name, maild.models.UTCDateTime(timezone=True),
                                       nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("ticket") as batch:
        for name in reversed(COLUMNS):
            batch.drop_column(name)
