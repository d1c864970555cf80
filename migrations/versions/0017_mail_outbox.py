"""mail outbox: platform mail, written in the transaction of the act that sends it

A row per message (invitation, password reset, notice), rendered when queued and
delivered by the `mail` queue's worker. Platform-level like `users`: mail sent on a
tenant's behalf names it in `sender_tenant_id` (for its brand), which is not
ownership, so the table has no tenant_id and no row-level security; `overture db
upgrade` grants the app role its privileges on it as on every table.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import overture.platform.db

revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('mail_outbox',
    sa.Column('to_address', sa.String(length=320), nullable=False),
    sa.Column('subject', sa.String(length=400), nullable=False),
    sa.Column('html_body', sa.Text(), nullable=False),
    sa.Column('text_body', sa.Text(), nullable=False),
    sa.Column('template', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('sent_at', overture.platform.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('next_attempt_at', overture.platform.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('sender_tenant_id', sa.Uuid(), nullable=True),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', overture.platform.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_mail_outbox'))
    )
    op.create_index(op.f('ix_mail_outbox_status'), 'mail_outbox', ['status'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_mail_outbox_status'), table_name='mail_outbox')
    op.drop_table('mail_outbox')
