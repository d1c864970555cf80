"""custom domains, and the host a session was signed in on

- `custom_domains` (tenant-owned, row-level security): a tenant's claim on a host name,
  its verification token and state. Unique per tenant; unique among verified claims
  across the installation (a partial index: only one tenant can hold a name). A second
  policy, `identity_read`, lets a transaction that set `app.host` read the verified
  claim on that one host, whatever its tenant: how a request is matched to its tenant.
- `user_sessions.host`: sessions are valid only on the host they were made on. Sessions
  from before this migration have none, so they end: everyone signs in once more.

Revision ID: 0024
Revises: 0020
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import overture.platform.db
from overture.platform import rls

revision = '0024'
down_revision = '0023'
branch_labels = None
depends_on = None

HOST_READ = f"verified_at IS NOT NULL AND hostname = {rls.CURRENT_HOST}"


def upgrade() -> None:
    op.create_table('custom_domains',
    sa.Column('hostname', sa.String(length=253), nullable=False),
    sa.Column('token', sa.String(length=64), nullable=False),
    sa.Column('verified_at', overture.platform.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_checked_at', overture.platform.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_check_error', sa.String(length=1000), nullable=True),
    sa.Column('created_by_id', sa.Uuid(), nullable=True),
    sa.Column('tenant_id', sa.Uuid(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', overture.platform.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_custom_domains_created_by_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_custom_domains_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_custom_domains')),
    sa.UniqueConstraint('tenant_id', 'hostname', name=op.f('uq_custom_domains_tenant_id_hostname'))
    )
    op.create_index(op.f('ix_custom_domains_tenant_id'), 'custom_domains', ['tenant_id'], unique=False)
    op.create_index('uq_custom_domains_verified_hostname', 'custom_domains', ['hostname'], unique=True, postgresql_where=sa.text('verified_at IS NOT NULL'), sqlite_where=sa.text('verified_at IS NOT NULL'))
    with op.batch_alter_table('user_sessions') as batch_op:
        batch_op.add_column(sa.Column('host', sa.String(length=253), nullable=True))
    rls.enable_tenant_rls(op, "custom_domains", identity_read=HOST_READ)


def downgrade() -> None:
    rls.disable_tenant_rls(op, "custom_domains", identity_read=True)
    with op.batch_alter_table('user_sessions') as batch_op:
        batch_op.drop_column('host')
    op.drop_index('uq_custom_domains_verified_hostname', table_name='custom_domains', postgresql_where=sa.text('verified_at IS NOT NULL'), sqlite_where=sa.text('verified_at IS NOT NULL'))
    op.drop_index(op.f('ix_custom_domains_tenant_id'), table_name='custom_domains')
    op.drop_table('custom_domains')
