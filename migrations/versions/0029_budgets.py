"""budgets: a tenant's billing standing, its budgets and caps, and their counters

- `billing_standings` (tenant-owned, row-level security): good or past due since an
  invoice's payment failed (see overture/billing/standing.py).

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

TABLES = ("billing_standings",)


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


def upgrade() -> None:
    _standings()
    for name in TABLES:
        rls.enable_tenant_rls(op, name)


def downgrade() -> None:
    for name in reversed(TABLES):
        rls.disable_tenant_rls(op, name)
        op.drop_table(name)
