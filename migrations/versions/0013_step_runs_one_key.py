"""step runs: one index for (run, path, step) instead of two

A step run's unique key was (tenant, run, step, path) beside an index on (run, path)
for reading a run's steps by iteration path. A run belongs to one tenant, so the key
(run, path, step) says the same and serves those reads too: every recorded step
writes one index entry fewer.

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-22
"""

from __future__ import annotations

from alembic import op

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('step_runs', schema=None) as batch_op:
        batch_op.create_unique_constraint('uq_step_runs_run_id_path_step_id',
                                          ['run_id', 'path', 'step_id'])
        batch_op.drop_constraint('uq_step_runs_tenant_id_run_id_step_id_path', type_='unique')
        batch_op.drop_index('ix_step_runs_run_path')


def downgrade() -> None:
    with op.batch_alter_table('step_runs', schema=None) as batch_op:
        batch_op.create_index('ix_step_runs_run_path', ['run_id', 'path'], unique=False)
        batch_op.create_unique_constraint('uq_step_runs_tenant_id_run_id_step_id_path',
                                          ['tenant_id', 'run_id', 'step_id', 'path'])
        batch_op.drop_constraint('uq_step_runs_run_id_path_step_id', type_='unique')
