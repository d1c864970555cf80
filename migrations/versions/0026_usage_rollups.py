"""metering: usage events carry a dimension, the step run and the user; hourly and
daily roll-ups

- `usage_events.dimension` (`provider:model` for model meters, the connector for action
  calls; '' otherwise), `step_run_id` and `user_id` (portal activity). Action calls
  stored before kept "connector.action" in `step_id`: the connector moves to the
  dimension and `step_id` is cleared (those calls were never tied to a step).
- `usage_hourly` and `usage_daily`: per tenant, bucket, meter, dimension, agent,
  workflow and slot, the sum of the events' quantities and their number, kept in the
  events' transactions (see overture/billing/rollups.py). Tenant-owned, row-level
  security; updated in place, so their pages keep room (fillfactor).

Roll-ups start empty: `overture billing rollup --rebuild` fills them from the events
written before (the app role, under row-level security, tenant by tenant).

Revision ID: 0026
Revises: 0021
Create Date: 2026-12-09
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import overture.platform.db
from overture.platform import rls

revision = '0026'
down_revision = '0021'
branch_labels = None
depends_on = None

TABLES = ("usage_hourly", "usage_daily")
KEY = ["tenant_id", "bucket", "meter", "dimension", "agent_id", "workflow_id", "slot"]


def _rollup(name: str, bucket: sa.types.TypeEngine) -> None:
    op.create_table(name,
    sa.Column('bucket', bucket, nullable=False),
    sa.Column('meter', sa.String(length=40), nullable=False),
    sa.Column('dimension', sa.String(length=200), nullable=False),
    sa.Column('agent_id', sa.Uuid(), nullable=False),
    sa.Column('workflow_id', sa.Uuid(), nullable=False),
    sa.Column('slot', sa.SmallInteger(), nullable=False),
    sa.Column('quantity', sa.Numeric(precision=20, scale=6), nullable=False),
    sa.Column('events', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.Uuid(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', overture.platform.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f(f'pk_{name}')),
    sa.UniqueConstraint(*KEY, name=f'uq_{name}_key')
    )
    rls.enable_tenant_rls(op, name)
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"ALTER TABLE {name} SET (fillfactor = 70)")


def upgrade() -> None:
    with op.batch_alter_table('usage_events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('dimension', sa.String(length=200), nullable=False,
                                      server_default=''))
        batch_op.add_column(sa.Column('step_run_id', sa.Uuid(), nullable=True))
        batch_op.add_column(sa.Column('user_id', sa.Uuid(), nullable=True))
    connector = ("split_part(step_id, '.', 1)" if op.get_bind().dialect.name == "postgresql"
                 else "substr(step_id, 1, instr(step_id, '.') - 1)")
    # Run as the owner, which row-level security binds too: lift it for this one update.
    postgres = op.get_bind().dialect.name == "postgresql"
    if postgres:
        op.execute("ALTER TABLE usage_events NO FORCE ROW LEVEL SECURITY")
    op.execute(f"UPDATE usage_events SET dimension = {connector}, step_id = NULL "
               "WHERE metric = 'action_calls' AND step_id LIKE '%.%'")
    if postgres:
        op.execute("ALTER TABLE usage_events FORCE ROW LEVEL SECURITY")
    _rollup('usage_hourly', overture.platform.db.UTCDateTime(timezone=True))
    _rollup('usage_daily', sa.Date())


def downgrade() -> None:
    for name in TABLES:
        rls.disable_tenant_rls(op, name)
        op.drop_table(name)
    with op.batch_alter_table('usage_events', schema=None) as batch_op:
        batch_op.drop_column('user_id')
        batch_op.drop_column('step_run_id')
        batch_op.drop_column('dimension')
