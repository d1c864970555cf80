"""budgets: a tenant's billing standing, its budgets and caps, and their counters

- `billing_standings` (tenant-owned, row-level security): good or past due since an
  invoice's payment failed (see overture/billing/standing.py).
- `budget_limits`: a workspace's hard monthly limits (its budget on `llm_cost`, caps on
  other meters), each the workspace's, an agent's or a workflow's (nil UUID: none),
  with the soft thresholds that alert (overture/billing/budgets.py).
- `budget_counters`, `budget_holds`: what calls hold on each limit while they run, per
  month (overture/billing/counters.py). Written by every limited call: no foreign key
  to the tenant (see TenantOwned); room kept on their pages (fillfactor).

All tenant-owned, with row-level security.

Revision ID: 0029
Revises: 0028
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import overture.platform.db
from overture.platform import rls

revision = '0029'
down_revision = '0028'
branch_labels = None
depends_on = None

TABLES = ("billing_standings", "budget_limits", "budget_counters", "budget_holds")
HOT = ("budget_counters", "budget_holds")


def _standings() -> None:
    op.create_table('billing_standings',
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('past_due_since', overture.platform.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('invoice_id', sa.String(length=255), nullable=True),
    sa.Column('changed_at', overture.platform.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('tenant_id', sa.Uuid(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', overture.platform.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_billing_standings_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_billing_standings')),
    sa.UniqueConstraint('tenant_id', name=op.f('uq_billing_standings_tenant_id'))
    )
    op.create_index(op.f('ix_billing_standings_tenant_id'), 'billing_standings', ['tenant_id'], unique=False)


def _limits() -> None:
    op.create_table('budget_limits',
    sa.Column('meter', sa.String(length=40), nullable=False),
    sa.Column('agent_id', sa.Uuid(), nullable=False),
    sa.Column('workflow_id', sa.Uuid(), nullable=False),
    sa.Column('limit_value', sa.Numeric(precision=20, scale=6), nullable=False),
    sa.Column('thresholds', sa.JSON(), nullable=False),
    sa.Column('updated_at', overture.platform.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('tenant_id', sa.Uuid(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', overture.platform.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_budget_limits_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_budget_limits')),
    sa.UniqueConstraint('tenant_id', 'meter', 'agent_id', 'workflow_id', name=op.f('uq_budget_limits_tenant_id_meter_agent_id_workflow_id'))
    )
    op.create_index(op.f('ix_budget_limits_tenant_id'), 'budget_limits', ['tenant_id'], unique=False)


def _counters() -> None:
    op.create_table('budget_counters',
    sa.Column('month', sa.String(length=7), nullable=False),
    sa.Column('meter', sa.String(length=40), nullable=False),
    sa.Column('agent_id', sa.Uuid(), nullable=False),
    sa.Column('workflow_id', sa.Uuid(), nullable=False),
    sa.Column('reserved', sa.Numeric(precision=20, scale=6), nullable=False),
    sa.Column('inflight', sa.Numeric(precision=20, scale=6), nullable=False),
    sa.Column('tenant_id', sa.Uuid(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', overture.platform.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_budget_counters')),
    sa.UniqueConstraint('tenant_id', 'month', 'meter', 'agent_id', 'workflow_id', name=op.f('uq_budget_counters_tenant_id_month_meter_agent_id_workflow_id'))
    )
    op.create_index('ix_budget_counters_tenant_month', 'budget_counters', ['tenant_id', 'month'], unique=False)
    op.create_table('budget_holds',
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('counter_id', sa.Uuid(), nullable=False),
    sa.Column('amount', sa.Numeric(precision=20, scale=6), nullable=False),
    sa.Column('done', sa.Boolean(), nullable=False),
    sa.Column('tenant_id', sa.Uuid(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', overture.platform.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_budget_holds'))
    )
    op.create_index('ix_budget_holds_tenant_key', 'budget_holds', ['tenant_id', 'key'], unique=False)
    op.create_index('ix_budget_holds_counter', 'budget_holds', ['counter_id'], unique=False)


def upgrade() -> None:
    _standings()
    _limits()
    _counters()
    for name in TABLES:
        rls.enable_tenant_rls(op, name)
    if op.get_bind().dialect.name == "postgresql":
        for name in HOT:
            op.execute(f"ALTER TABLE {name} SET (fillfactor = 70)")


def downgrade() -> None:
    for name in reversed(TABLES):
        rls.disable_tenant_rls(op, name)
        op.drop_table(name)
