"""step runs: attempts lost to infrastructure, counted apart from the retry policy's

A step run's `attempt` counted every claim, so a worker that died mid-step (its lease
taken back by the sweeper) used up an attempt of the step's retry policy, and a step
allowed one attempt could not fail once after a crash. `interruptions` counts the
attempts lost to infrastructure (a dead worker, the database failing under the step);
`attempt` counts only those that ran and ended. A constant default: on PostgreSQL 11+
adding the column rewrites nothing.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('step_runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('interruptions', sa.Integer(), nullable=False,
                                      server_default=sa.text('0')))


def downgrade() -> None:
    with op.batch_alter_table('step_runs', schema=None) as batch_op:
        batch_op.drop_column('interruptions')
