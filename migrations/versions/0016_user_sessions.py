"""user sessions: signed-in sessions kept server-side, so that they can end

A row per signed-in browser session, found by the SHA-256 of the random id in its
cookie. Sessions belong to users, who are platform-level: like `users`, the table
carries no tenant_id and no row-level security; `overture db upgrade` grants the app
role its privileges on it as on every table.

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import overture.platform.db

revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('user_sessions',
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('auth_method', sa.String(length=16), nullable=False),
    sa.Column('authenticated_at', overture.platform.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_seen_at', overture.platform.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('idle_expires_at', overture.platform.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', overture.platform.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('ip', sa.String(length=64), nullable=True),
    sa.Column('user_agent', sa.String(length=400), nullable=True),
    sa.Column('data', sa.Text(), nullable=False),
    sa.Column('revoked_at', overture.platform.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('revoked_reason', sa.String(length=32), nullable=True),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', overture.platform.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_user_sessions_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_user_sessions')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_user_sessions_token_hash'))
    )
    op.create_index(op.f('ix_user_sessions_user_id'), 'user_sessions', ['user_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_user_sessions_user_id'), table_name='user_sessions')
    op.drop_table('user_sessions')
