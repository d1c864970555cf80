"""portal: what a workspace publishes to its end customers' portal

- `portal_publications` (tenant-owned, row-level security): a workflow or an agent as
  the portal shows it: published or not, label, description, the step outputs a
  customer sees and whether the run's final output is shown.
- `ix_runs_tenant_started_by`: a portal customer's own runs.

Revision ID: 0025
Revises: 0020
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import overture.platform.db
from overture.platform import rls

revision = '0025'
down_revision = '0024'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('portal_publications',
    sa.Column('workflow_id', sa.Uuid(), nullable=True),
    sa.Column('agent_id', sa.Uuid(), nullable=True),
    sa.Column('published', sa.Boolean(), nullable=False),
    sa.Column('label', sa.String(length=120), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('visible_steps', sa.JSON(), nullable=False),
    sa.Column('show_output', sa.Boolean(), nullable=False),
    sa.Column('updated_by_id', sa.Uuid(), nullable=True),
    sa.Column('updated_at', overture.platform.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('tenant_id', sa.Uuid(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', overture.platform.db.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('(workflow_id IS NULL) <> (agent_id IS NULL)', name=op.f('ck_portal_publications_one_target')),
    sa.ForeignKeyConstraint(['agent_id'], ['agents.id'], name=op.f('fk_portal_publications_agent_id_agents'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_portal_publications_tenant_id_tenants'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['updated_by_id'], ['users.id'], name=op.f('fk_portal_publications_updated_by_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['workflow_id'], ['workflows.id'], name=op.f('fk_portal_publications_workflow_id_workflows'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_portal_publications')),
    sa.UniqueConstraint('tenant_id', 'agent_id', name=op.f('uq_portal_publications_tenant_id_agent_id')),
    sa.UniqueConstraint('tenant_id', 'workflow_id', name=op.f('uq_portal_publications_tenant_id_workflow_id'))
    )
    op.create_index(op.f('ix_portal_publications_tenant_id'), 'portal_publications', ['tenant_id'], unique=False)
    rls.enable_tenant_rls(op, 'portal_publications')
    op.create_index('ix_runs_tenant_started_by', 'runs', ['tenant_id', 'started_by_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_runs_tenant_started_by', table_name='runs')
    rls.disable_tenant_rls(op, 'portal_publications')
    op.drop_index(op.f('ix_portal_publications_tenant_id'), table_name='portal_publications')
    op.drop_table('portal_publications')
