"""test mode: runs that send nothing and bill nothing (issue 18, "Safe test mode")

- `runs.mode`: 'live' (every run so far) or 'test'. A test run's world-changing
  connector actions answer with mocks, its models are scripted (or offline), and it
  writes no usage, no outbound events and no mail (orchestration/testmode/).
- `runs.test_options`: what the test run was started with (mocks, scripted model
  turns, the run whose recorded outputs answer its actions, agent version overrides);
  NULL for a live run.
- An index on (tenant_id, mode) where mode = 'test': the few test runs, for listing
  them apart.

Revision ID: 0035
Revises: 0034
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0035'
down_revision = '0034'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('runs', sa.Column('mode', sa.String(length=8), nullable=False,
                                    server_default='live'))
    op.add_column('runs', sa.Column('test_options', sa.JSON(), nullable=True))
    op.create_index('ix_runs_tenant_test', 'runs', ['tenant_id', 'created_at'],
                    postgresql_where=sa.text("mode = 'test'"),
                    sqlite_where=sa.text("mode = 'test'"))


def downgrade() -> None:
    op.drop_index('ix_runs_tenant_test', table_name='runs')
    op.drop_column('runs', 'test_options')
    op.drop_column('runs', 'mode')
