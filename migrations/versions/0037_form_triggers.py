"""form triggers: a hosted form per trigger, made from the workflow's input schema

- `form_triggers`: per workflow, the form's secret URL token, its title, description
  and success message, whether the honeypot field is on, whether it takes submissions,
  and counters of runs started and honeypot catches. Tenant-owned, row-level security.

Revision ID: 0037
Revises: 0036
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import overture.platform.db
from overture.platform import rls

revision = '0037'
down_revision = '0036'
branch_labels = None
depends_on = None

TABLE = "form_triggers"


def upgrade() -> None:
    op.create_table(TABLE,
    sa.Column('workflow_id', sa.Uuid(), nullable=False),
    sa.Column('token', sa.String(length=64), nullable=False),
    sa.Column('title', sa.String(length=120), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('success_message', sa.Text(), nullable=False),
    sa.Column('honeypot', sa.Boolean(), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('submissions', sa.Integer(), nullable=False),
    sa.Column('honeypot_hits', sa.Integer(), nullable=False),
    sa.Column('last_submission_at', overture.platform.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_by_id', sa.Uuid(), nullable=True),
    sa.Column('tenant_id', sa.Uuid(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', overture.platform.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['workflow_id'], ['workflows.id'], name=op.f('fk_form_triggers_workflow_id_workflows'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_form_triggers_created_by_id_users')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_form_triggers_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_form_triggers')),
    sa.UniqueConstraint('token', name=op.f('uq_form_triggers_token'))
    )
    with op.batch_alter_table(TABLE, schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_form_triggers_tenant_id'), ['tenant_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_form_triggers_workflow_id'), ['workflow_id'], unique=False)
    rls.enable_tenant_rls(op, TABLE)


def downgrade() -> None:
    rls.disable_tenant_rls(op, TABLE)
    op.drop_table(TABLE)
