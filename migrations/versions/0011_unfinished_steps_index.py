"""the index of due step runs holds unfinished rows only

It led with tenant_id and held every step run, so on a table whose statistics were
young the planner took it for any tenant-scoped lookup (row-level security adds the
tenant to every query) and filtered thousands of finished rows. Holding only queued,
running and waiting rows, it serves the sweeper and is too narrow to be mistaken for
a way to find finished steps; finished rows also stop being maintained in it.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

UNFINISHED = sa.text("status IN ('queued', 'running', 'waiting')")


def upgrade() -> None:
    op.drop_index('ix_step_runs_due', table_name='step_runs')
    op.create_index('ix_step_runs_due', 'step_runs', ['tenant_id', 'status', 'next_attempt_at'],
                    postgresql_where=UNFINISHED, sqlite_where=UNFINISHED)


def downgrade() -> None:
    op.drop_index('ix_step_runs_due', table_name='step_runs')
    op.create_index('ix_step_runs_due', 'step_runs', ['tenant_id', 'status', 'next_attempt_at'])
