"""indexes the console's pages read by: agent calls, runs by status and time, replays

Measured with `python -m bench.console_pages` (10,000 runs, 100 workflows):

- An agent's page reads its calls and its model usage from usage events by agent
  and time. Only (tenant, metric, time) was indexed, so its usage was summed by
  scanning every usage event of the tenant. Events that name an agent are now
  indexed by (tenant, agent, metric, time); the others (most of them: per step and
  per action) are left out of it.
- The runs of a status since a moment (failures, the agency's overview of each
  workspace: succeeded and failed in the last seven days, in flight) are read by
  (tenant, status, created_at), which replaces (tenant, status): the same prefix, and
  a run's status already is in an index, so a run's updates are no less "HOT".
- Replays are found by the run they replay (a failed run retried or not, the
  failures' groups, and PostgreSQL checking the self-reference when runs are
  deleted), and nothing indexed `replay_of_id`. Few runs are replays: only those
  are in the index.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0021'
down_revision = '0027'
branch_labels = None
depends_on = None

NAMES_AGENT = sa.text("agent_id IS NOT NULL")
A_REPLAY = sa.text("replay_of_id IS NOT NULL")


def upgrade() -> None:
    op.create_index('ix_usage_events_tenant_agent_time', 'usage_events',
                    ['tenant_id', 'agent_id', 'metric', 'created_at'],
                    postgresql_where=NAMES_AGENT, sqlite_where=NAMES_AGENT)
    op.drop_index('ix_runs_tenant_status', table_name='runs')
    op.create_index('ix_runs_tenant_status_created', 'runs',
                    ['tenant_id', 'status', 'created_at'])
    op.create_index('ix_runs_replay_of_id', 'runs', ['replay_of_id'],
                    postgresql_where=A_REPLAY, sqlite_where=A_REPLAY)


def downgrade() -> None:
    op.drop_index('ix_runs_replay_of_id', table_name='runs')
    op.drop_index('ix_runs_tenant_status_created', table_name='runs')
    op.create_index('ix_runs_tenant_status', 'runs', ['tenant_id', 'status'])
    op.drop_index('ix_usage_events_tenant_agent_time', table_name='usage_events')
