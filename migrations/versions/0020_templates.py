"""templates: agency templates, their versions, the workspaces made from them, roll-outs

- `templates`, `template_versions` (immutable JSON snapshots of a workspace),
  `template_workspaces` (a client workspace provisioned from a template and the version
  it is on), `rollouts` and `rollout_workspaces` (per-workspace progress and what to
  undo). Every table belongs to the agency (tenant-owned, row-level security).

Revision ID: 0020
Revises: 0018
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import overture.platform.db
from overture.platform import rls

revision = '0020'
down_revision = '0018'
branch_labels = None
depends_on = None

TABLES = ("templates", "template_versions", "template_workspaces", "rollouts",
          "rollout_workspaces")


def upgrade() -> None:
    op.create_table('templates',
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('latest_version', sa.Integer(), nullable=False),
    sa.Column('created_by_id', sa.Uuid(), nullable=True),
    sa.Column('tenant_id', sa.Uuid(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', overture.platform.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_templates_created_by_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_templates_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_templates')),
    sa.UniqueConstraint('tenant_id', 'name', name=op.f('uq_templates_tenant_id_name'))
    )
    op.create_index(op.f('ix_templates_tenant_id'), 'templates', ['tenant_id'], unique=False)
    op.create_table('rollouts',
    sa.Column('template_id', sa.Uuid(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('stop_on_failure', sa.Boolean(), nullable=False),
    sa.Column('created_by_id', sa.Uuid(), nullable=True),
    sa.Column('finished_at', overture.platform.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('rolled_back_at', overture.platform.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('tenant_id', sa.Uuid(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', overture.platform.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_rollouts_created_by_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['template_id'], ['templates.id'], name=op.f('fk_rollouts_template_id_templates'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_rollouts_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_rollouts'))
    )
    op.create_index(op.f('ix_rollouts_template_id'), 'rollouts', ['template_id'], unique=False)
    op.create_index(op.f('ix_rollouts_tenant_id'), 'rollouts', ['tenant_id'], unique=False)
    op.create_table('template_versions',
    sa.Column('template_id', sa.Uuid(), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('snapshot', sa.JSON(), nullable=False),
    sa.Column('source_workspace_id', sa.Uuid(), nullable=True),
    sa.Column('created_by_id', sa.Uuid(), nullable=True),
    sa.Column('tenant_id', sa.Uuid(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', overture.platform.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_template_versions_created_by_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['source_workspace_id'], ['tenants.id'], name=op.f('fk_template_versions_source_workspace_id_tenants'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['template_id'], ['templates.id'], name=op.f('fk_template_versions_template_id_templates'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_template_versions_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_template_versions')),
    sa.UniqueConstraint('tenant_id', 'template_id', 'number', name=op.f('uq_template_versions_tenant_id_template_id_number'))
    )
    op.create_index(op.f('ix_template_versions_template_id'), 'template_versions', ['template_id'], unique=False)
    op.create_index(op.f('ix_template_versions_tenant_id'), 'template_versions', ['tenant_id'], unique=False)
    op.create_table('template_workspaces',
    sa.Column('template_id', sa.Uuid(), nullable=False),
    sa.Column('workspace_id', sa.Uuid(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.Uuid(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', overture.platform.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['template_id'], ['templates.id'], name=op.f('fk_template_workspaces_template_id_templates'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_template_workspaces_tenant_id_tenants'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['workspace_id'], ['tenants.id'], name=op.f('fk_template_workspaces_workspace_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_template_workspaces')),
    sa.UniqueConstraint('tenant_id', 'workspace_id', name=op.f('uq_template_workspaces_tenant_id_workspace_id'))
    )
    op.create_index(op.f('ix_template_workspaces_template_id'), 'template_workspaces', ['template_id'], unique=False)
    op.create_index(op.f('ix_template_workspaces_tenant_id'), 'template_workspaces', ['tenant_id'], unique=False)
    op.create_table('rollout_workspaces',
    sa.Column('rollout_id', sa.Uuid(), nullable=False),
    sa.Column('workspace_id', sa.Uuid(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('canary', sa.Boolean(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('from_version', sa.Integer(), nullable=True),
    sa.Column('changes', sa.JSON(), nullable=True),
    sa.Column('applied_at', overture.platform.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('tenant_id', sa.Uuid(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', overture.platform.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['rollout_id'], ['rollouts.id'], name=op.f('fk_rollout_workspaces_rollout_id_rollouts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_rollout_workspaces_tenant_id_tenants'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['workspace_id'], ['tenants.id'], name=op.f('fk_rollout_workspaces_workspace_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_rollout_workspaces')),
    sa.UniqueConstraint('tenant_id', 'rollout_id', 'workspace_id', name=op.f('uq_rollout_workspaces_tenant_id_rollout_id_workspace_id'))
    )
    op.create_index(op.f('ix_rollout_workspaces_rollout_id'), 'rollout_workspaces', ['rollout_id'], unique=False)
    op.create_index(op.f('ix_rollout_workspaces_tenant_id'), 'rollout_workspaces', ['tenant_id'], unique=False)
    for table in TABLES:
        rls.enable_tenant_rls(op, table)


def downgrade() -> None:
    for table in reversed(TABLES):
        rls.disable_tenant_rls(op, table)
    op.drop_index(op.f('ix_rollout_workspaces_tenant_id'), table_name='rollout_workspaces')
    op.drop_index(op.f('ix_rollout_workspaces_rollout_id'), table_name='rollout_workspaces')
    op.drop_table('rollout_workspaces')
    op.drop_index(op.f('ix_template_workspaces_tenant_id'), table_name='template_workspaces')
    op.drop_index(op.f('ix_template_workspaces_template_id'), table_name='template_workspaces')
    op.drop_table('template_workspaces')
    op.drop_index(op.f('ix_template_versions_tenant_id'), table_name='template_versions')
    op.drop_index(op.f('ix_template_versions_template_id'), table_name='template_versions')
    op.drop_table('template_versions')
    op.drop_index(op.f('ix_rollouts_tenant_id'), table_name='rollouts')
    op.drop_index(op.f('ix_rollouts_template_id'), table_name='rollouts')
    op.drop_table('rollouts')
    op.drop_index(op.f('ix_templates_tenant_id'), table_name='templates')
    op.drop_table('templates')
