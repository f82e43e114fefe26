"""Initial schema: inbound mail, tickets, their messages, the outbox, counters.

Revision ID: 0001
Revises: 
Create Date: 2026-11-22 02:01:56.559834
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

import maild.models

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('ticket',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('number', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('subject', sa.Text(), nullable=False),
    sa.Column('requester', sqlmodel.sql.sqltypes.AutoString(length=512), nullable=True),
    sa.Column('requester_name', sqlmodel.sql.sqltypes.AutoString(length=512), nullable=True),
    sa.Column('customer', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True),
    sa.Column('policy', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True),
    sa.Column('queue', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True),
    sa.Column('priority', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
    sa.Column('private', sa.Boolean(), nullable=False),
    sa.Column('language', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('created_at', maild.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', maild.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('response_due', maild.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('resolution_due', maild.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('missing', sa.JSON(), nullable=True),
    sa.Column('participants', sa.JSON(), nullable=True),
    sa.Column('decision', sa.JSON(), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('number')
    )
    with op.batch_alter_table('ticket', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ticket_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_ticket_customer'), ['customer'], unique=False)
        batch_op.create_index(batch_op.f('ix_ticket_queue'), ['queue'], unique=False)
        batch_op.create_index(batch_op.f('ix_ticket_requester'), ['requester'], unique=False)
        batch_op.create_index(batch_op.f('ix_ticket_response_due'), ['response_due'], unique=False)
        batch_op.create_index(batch_op.f('ix_ticket_status'), ['status'], unique=False)

    op.create_table('ticket_counter',
    sa.Column('scope', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('last', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('scope')
    )
    op.create_table('inbound',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('received_at', maild.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('transport', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('source', sa.Text(), nullable=True),
    sa.Column('envelope_sender', sqlmodel.sql.sqltypes.AutoString(length=512), nullable=True),
    sa.Column('envelope_recipients', sa.JSON(), nullable=True),
    sa.Column('raw', sa.LargeBinary(), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('idempotency_key', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('message_id', sqlmodel.sql.sqltypes.AutoString(length=998), nullable=True),
    sa.Column('state', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('claimed_until', maild.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('processed_at', maild.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('duplicates', sa.Integer(), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
    sa.Column('ticket_id', sa.Integer(), nullable=True),
    sa.Column('decision', sa.JSON(), nullable=True),
    sa.ForeignKeyConstraint(['ticket_id'], ['ticket.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('idempotency_key')
    )
    with op.batch_alter_table('inbound', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_inbound_message_id'), ['message_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_inbound_received_at'), ['received_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_inbound_state'), ['state'], unique=False)
        batch_op.create_index(batch_op.f('ix_inbound_ticket_id'), ['ticket_id'], unique=False)

    op.create_table('outbox',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('ticket_id', sa.Integer(), nullable=True),
    sa.Column('inbound_id', sa.Integer(), nullable=True),
    sa.Column('purpose', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('envelope_sender', sqlmodel.sql.sqltypes.AutoString(length=512), nullable=False),
    sa.Column('recipient', sqlmodel.sql.sqltypes.AutoString(length=512), nullable=False),
    sa.Column('message_id', sqlmodel.sql.sqltypes.AutoString(length=998), nullable=False),
    sa.Column('raw', sa.LargeBinary(), nullable=False),
    sa.Column('state', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('created_at', maild.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('next_attempt_at', maild.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('sent_at', maild.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['inbound_id'], ['inbound.id'], ),
    sa.ForeignKeyConstraint(['ticket_id'], ['ticket.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_outbox_message_id'), ['message_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_outbox_next_attempt_at'), ['next_attempt_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_outbox_recipient'), ['recipient'], unique=False)
        batch_op.create_index(batch_op.f('ix_outbox_state'), ['state'], unique=False)
        batch_op.create_index(batch_op.f('ix_outbox_ticket_id'), ['ticket_id'], unique=False)

    op.create_table('ticket_message',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('ticket_id', sa.Integer(), nullable=False),
    sa.Column('inbound_id', sa.Integer(), nullable=True),
    sa.Column('outbox_id', sa.Integer(), nullable=True),
    sa.Column('direction', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
    sa.Column('role', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('message_id', sqlmodel.sql.sqltypes.AutoString(length=998), nullable=True),
    sa.Column('sender', sqlmodel.sql.sqltypes.AutoString(length=512), nullable=True),
    sa.Column('subject', sa.Text(), nullable=True),
    sa.Column('created_at', maild.models.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['inbound_id'], ['inbound.id'], ),
    sa.ForeignKeyConstraint(['outbox_id'], ['outbox.id'], ),
    sa.ForeignKeyConstraint(['ticket_id'], ['ticket.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('inbound_id')
    )
    with op.batch_alter_table('ticket_message', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ticket_message_message_id'), ['message_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_ticket_message_ticket_id'), ['ticket_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('ticket_message', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ticket_message_ticket_id'))
        batch_op.drop_index(batch_op.f('ix_ticket_message_message_id'))

    op.drop_table('ticket_message')
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_outbox_ticket_id'))
        batch_op.drop_index(batch_op.f('ix_outbox_state'))
        batch_op.drop_index(batch_op.f('ix_outbox_recipient'))
        batch_op.drop_index(batch_op.f('ix_outbox_next_attempt_at'))
        batch_op.drop_index(batch_op.f('ix_outbox_message_id'))

    op.drop_table('outbox')
    with op.batch_alter_table('inbound', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_inbound_ticket_id'))
        batch_op.drop_index(batch_op.f('ix_inbound_state'))
        batch_op.drop_index(batch_op.f('ix_inbound_received_at'))
        batch_op.drop_index(batch_op.f('ix_inbound_message_id'))

    op.drop_table('inbound')
    op.drop_table('ticket_counter')
    with op.batch_alter_table('ticket', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ticket_status'))
        batch_op.drop_index(batch_op.f('ix_ticket_response_due'))
        batch_op.drop_index(batch_op.f('ix_ticket_requester'))
        batch_op.drop_index(batch_op.f('ix_ticket_queue'))
        batch_op.drop_index(batch_op.f('ix_ticket_customer'))
        batch_op.drop_index(batch_op.f('ix_ticket_created_at'))

    op.drop_table('ticket')
