"""Bounces and acknowledgement limits: VERP tokens, delivery history, suppressed
addresses, and body digests for repeated messages.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import maild.models

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("bounce_token", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("history", sa.JSON(), nullable=True))
        batch.create_index("ix_outbox_bounce_token", ["bounce_token"], unique=False)
    with op.batch_alter_table("ticket_message") as batch:
        batch.add_column(sa.Column("body_digest", sa.String(length=64), nullable=True))
        batch.create_index("ix_ticket_message_body_digest", ["body_digest"], unique=False)
        batch.create_index("ix_ticket_message_sender", ["sender"], unique=False)
    op.create_table(
        "suppression",
        sa.Column("address", sa.String(length=512), nullable=False),
        sa.Column("bounced_at", maild.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("inbound_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["inbound_id"], ["inbound.id"]),
        sa.PrimaryKeyConstraint("address"),
    )


def downgrade() -> None:
    op.drop_table("suppression")
    with op.batch_alter_table("ticket_message") as batch:
        batch.drop_index("ix_ticket_message_sender")
        batch.drop_index("ix_ticket_message_body_digest")
        batch.drop_column("body_digest")
    with op.batch_alter_table("outbox") as batch:
        batch.drop_index("ix_outbox_bounce_token")
        batch.drop_column("history")
        batch.drop_column("bounce_token")
