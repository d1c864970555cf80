"""branded mail: the brand's sender on each message, tenants' own SMTP servers, failure
alerts per workflow, and the usage alerts already sent

- `mail_outbox.sender_name`, `reply_to`: the From name and Reply-To of the brand a mail
  is about, kept when it is queued (the platform's own mail has neither).
- `mail_servers` (tenant-owned, row-level security): an agency's or workspace's own
  SMTP server; the password stays in the vault (`credential_id`).
- `workflows.failure_alerts`, `failure_recipients`: mail a failed run, and to whom.
- `usage_alerts` (tenant-owned, row-level security): one row per alert sent, unique per
  tenant, meter, threshold and month, so an alert goes out once.

Revision ID: 0027
Revises: 0025
Create Date: 2026-12-09
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import overture.platform.db
from overture.platform import rls

revision = '0027'
down_revision = '0025'
branch_labels = None
depends_on = None

TABLES = ("mail_servers", "usage_alerts")


def upgrade() -> None:
    with op.batch_alter_table('mail_outbox') as batch_op:
        batch_op.add_column(sa.Column('sender_name', sa.String(length=120), nullable=True))
        batch_op.add_column(sa.Column('reply_to', sa.String(length=320), nullable=True))
    with op.batch_alter_table('workflows') as batch_op:
        batch_op.add_column(sa.Column('failure_alerts', sa.Boolean(), nullable=False,
                                      server_default=sa.false()))
        batch_op.add_column(sa.Column('failure_recipients', sa.JSON(), nullable=False,
                                      server_default='[]'))
    op.create_table('mail_servers',
    sa.Column('host', sa.String(length=253), nullable=False),
    sa.Column('port', sa.Integer(), nullable=False),
    sa.Column('security', sa.String(length=16), nullable=False),
    sa.Column('from_address', sa.String(length=254), nullable=False),
    sa.Column('credential_id', sa.Uuid(), nullable=True),
    sa.Column('updated_at', overture.platform.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_sent_at', overture.platform.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_error_at', overture.platform.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('tenant_id', sa.Uuid(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', overture.platform.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['credential_id'], ['credentials.id'], name=op.f('fk_mail_servers_credential_id_credentials'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_mail_servers_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_mail_servers')),
    sa.UniqueConstraint('tenant_id', name=op.f('uq_mail_servers_tenant_id'))
    )
    op.create_index(op.f('ix_mail_servers_tenant_id'), 'mail_servers', ['tenant_id'], unique=False)
    op.create_table('usage_alerts',
    sa.Column('meter', sa.String(length=60), nullable=False),
    sa.Column('threshold_percent', sa.Integer(), nullable=False),
    sa.Column('month', sa.String(length=7), nullable=False),
    sa.Column('used', sa.Numeric(precision=20, scale=6), nullable=False),
    sa.Column('limit_value', sa.Numeric(precision=20, scale=6), nullable=False),
    sa.Column('tenant_id', sa.Uuid(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', overture.platform.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_usage_alerts_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_usage_alerts')),
    sa.UniqueConstraint('tenant_id', 'meter', 'threshold_percent', 'month', name=op.f('uq_usage_alerts_tenant_id_meter_threshold_percent_month'))
    )
    op.create_index(op.f('ix_usage_alerts_tenant_id'), 'usage_alerts', ['tenant_id'], unique=False)
    for table in TABLES:
        rls.enable_tenant_rls(op, table)


def downgrade() -> None:
    for table in TABLES:
        rls.disable_tenant_rls(op, table)
    op.drop_index(op.f('ix_usage_alerts_tenant_id'), table_name='usage_alerts')
    op.drop_table('usage_alerts')
    op.drop_index(op.f('ix_mail_servers_tenant_id'), table_name='mail_servers')
    op.drop_table('mail_servers')
    with op.batch_alter_table('workflows') as batch_op:
        batch_op.drop_column('failure_recipients')
        batch_op.drop_column('failure_alerts')
    with op.batch_alter_table('mail_outbox') as batch_op:
        batch_op.drop_column('reply_to')
        batch_op.drop_column('sender_name')
