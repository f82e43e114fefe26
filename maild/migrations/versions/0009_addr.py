"""Acknowledgement limits by mailbox and domain: the keys each acknowledgement is counted by.

Acknowledgements made before this revision get their mailbox as the
lower-cased recipient (the +tag and domain forms are not recomputed), so the
limits go on counting them for the day after the upgrade.

Revision ID: 0006_addr
Revises: 0006_outbox
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_addr"
down_revision = "0006_outbox"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("mailbox", sa.String(length=512), nullable=True))
        batch.add_column(sa.Column("recipient_domain", sa.String(length=255), nullable=True))
        batch.add_column(sa.Column("sender_domain", sa.String(length=255), nullable=True))
        batch.create_index("ix_outbox_mailbox", ["mailbox"], unique=False)
        batch.create_index("ix_outbox_recipient_domain", ["recipient_domain"], unique=False)
        batch.create_index("ix_outbox_sender_domain", ["sender_domain"], unique=False)
    op.execute("UPDATE outbox SET mailbox = lower(recipient) WHERE purpose = 'ack'")


def downgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.drop_index("ix_outbox_sender_domain")
        batch.drop_index("ix_outbox_recipient_domain")
        batch.drop_index("ix_outbox_mailbox")
        batch.drop_column("sender_domain")
        batch.drop_column("recipient_domain")
        batch.drop_column("mailbox")
