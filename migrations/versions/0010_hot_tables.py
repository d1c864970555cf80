"""step runs and usage events: no foreign key to tenants, leaner indexes; step runs
say when they ended a parallel branch

Every step writes both tables several times; a foreign key to `tenants` share-locks
the tenant's row in each of those transactions, and PostgreSQL turns many concurrent
share lockers of one row into multixacts, which cost more than the writes themselves
(see TenantOwned). Row-level security still only lets the scope's tenant be written.
The lone tenant_id indexes are covered by wider ones that start with tenant_id.
`ends_block` marks the step that ended a parallel branch: a join counts those rows
instead of every branch rewriting its parent's state under the run's lock.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('step_runs', schema=None) as batch_op:
        batch_op.drop_constraint('fk_step_runs_tenant_id_tenants', type_='foreignkey')
        batch_op.drop_index('ix_step_runs_tenant_id')
        batch_op.add_column(sa.Column('ends_block', sa.Boolean(), nullable=False,
                                      server_default=sa.false()))
    with op.batch_alter_table('usage_events', schema=None) as batch_op:
        batch_op.drop_constraint('fk_usage_events_tenant_id_tenants', type_='foreignkey')
        batch_op.drop_index('ix_usage_events_tenant_id')
        batch_op.drop_index('ix_usage_events_metric')
        batch_op.create_index('ix_usage_events_tenant_metric_time',
                              ['tenant_id', 'metric', 'created_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('usage_events', schema=None) as batch_op:
        batch_op.drop_index('ix_usage_events_tenant_metric_time')
        batch_op.create_index('ix_usage_events_metric', ['metric'], unique=False)
        batch_op.create_index('ix_usage_events_tenant_id', ['tenant_id'], unique=False)
        batch_op.create_foreign_key('fk_usage_events_tenant_id_tenants', 'tenants',
                                    ['tenant_id'], ['id'], ondelete='CASCADE')
    with op.batch_alter_table('step_runs', schema=None) as batch_op:
        batch_op.drop_column('ends_block')
        batch_op.create_index('ix_step_runs_tenant_id', ['tenant_id'], unique=False)
        batch_op.create_foreign_key('fk_step_runs_tenant_id_tenants', 'tenants',
                                    ['tenant_id'], ['id'], ondelete='CASCADE')
