"""step runs and runs updated in place: no index on step status, room left in pages

Recording a step changes its row's status, and the partial index of unfinished step
runs (0011) made every such update write an entry in each of the table's indexes; the
planner also kept mistaking that index, which leads with the tenant, for a way to find
one row by its id (row-level security adds the tenant to every query), and scanned all
of a tenant's unfinished rows to record one step. Without it, and with free space left
in each page (fillfactor), PostgreSQL updates a step run, and the step counter of its
run, in place ("HOT": no index is written). The sweeper finds unfinished step runs
through the running runs they belong to instead.

Usage events lose their index on workflow_id, which no query uses (billing reads them
by tenant, metric and time; a run's totals by run).

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None

UNFINISHED = sa.text("status IN ('queued', 'running', 'waiting')")
FILLFACTORS = {"step_runs": 80, "runs": 70}


def upgrade() -> None:
    op.drop_index('ix_step_runs_due', table_name='step_runs')
    op.drop_index('ix_usage_events_workflow_id', table_name='usage_events')
    if op.get_bind().dialect.name == "postgresql":
        for table, fillfactor in FILLFACTORS.items():
            op.execute(f"ALTER TABLE {table} SET (fillfactor = {fillfactor})")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in FILLFACTORS:
            op.execute(f"ALTER TABLE {table} RESET (fillfactor)")
    op.create_index('ix_usage_events_workflow_id', 'usage_events', ['workflow_id'])
    op.create_index('ix_step_runs_due', 'step_runs', ['tenant_id', 'status', 'next_attempt_at'],
                    postgresql_where=UNFINISHED, sqlite_where=UNFINISHED)
