"""Ticket lifecycle: assignee, the ticket a new one refers to, and the event trail.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import maild.models

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("ticket") as batch:
        batch.add_column(sa.Column("assignee", sa.String(length=512), nullable=True))
        batch.add_column(sa.Column("refers_to", sa.String(length=32), nullable=True))
    op.create_table(
        "ticket_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("at", maild.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=512), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(["ticket_id"], ["ticket.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_ticket_event_ticket_id", "ticket_event", ["ticket_id"])


def downgrade() -> None:
    op.drop_index("ix_ticket_event_ticket_id", table_name="ticket_event")
    op.drop_table("ticket_event")
    with op.batch_alter_table("ticket") as batch:
        batch.drop_column("refers_to")
        batch.drop_column("assignee")
