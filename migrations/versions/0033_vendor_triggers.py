"""vendor triggers: signed event feeds from Slack, HubSpot, Zendesk, Jira and Typeform

- `vendor_triggers`: per workflow, the vendor (`source`), the secret URL token, the
  vault credential holding the vendor's signing secret, an optional connection and the
  feed's settings (channels, event types). Tenant-owned, row-level security.

Revision ID: 0033
Revises: 0030
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import overture.platform.db
from overture.platform import rls

revision = '0033'
down_revision = '0030'
branch_labels = None
depends_on = None

TABLE = "vendor_triggers"


def upgrade() -> None:
    op.create_table(TABLE,
    sa.Column('workflow_id', sa.Uuid(), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('token', sa.String(length=64), nullable=False),
    sa.Column('credential_id', sa.Uuid(), nullable=True),
    sa.Column('connection_id', sa.Uuid(), nullable=True),
    sa.Column('settings', sa.JSON(), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('last_event_at', overture.platform.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_by_id', sa.Uuid(), nullable=True),
    sa.Column('tenant_id', sa.Uuid(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', overture.platform.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['workflow_id'], ['workflows.id'], name=op.f('fk_vendor_triggers_workflow_id_workflows'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['credential_id'], ['credentials.id'], name=op.f('fk_vendor_triggers_credential_id_credentials'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['connection_id'], ['connections.id'], name=op.f('fk_vendor_triggers_connection_id_connections'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_vendor_triggers_created_by_id_users')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_vendor_triggers_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_vendor_triggers')),
    sa.UniqueConstraint('token', name=op.f('uq_vendor_triggers_token'))
    )
    with op.batch_alter_table(TABLE, schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_vendor_triggers_tenant_id'), ['tenant_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_vendor_triggers_workflow_id'), ['workflow_id'], unique=False)
    rls.enable_tenant_rls(op, TABLE)


def downgrade() -> None:
    rls.disable_tenant_rls(op, TABLE)
    op.drop_table(TABLE)
