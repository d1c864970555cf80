"""stripe plans: each plan's Stripe product and prices, each billed tenant's subscription

- `stripe_plans` (under the plan's owner) and `stripe_subscriptions` (under the billed
  tenant): tenant-owned, row-level security (overture/billing/stripe_models.py). Both
  are also the pending state the scheduler's billing pass and `overture billing
  sync-plans` work from.

Revision ID: 0031
Revises: 0033
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import overture.platform.db
from overture.platform import rls

revision = '0031'
down_revision = '0033'
branch_labels = None
depends_on = None

UTC = overture.platform.db.UTCDateTime(timezone=True)
TENANT_TABLES = ("stripe_plans", "stripe_subscriptions")


def _owned(name: str, *columns: sa.Column) -> None:
    op.create_table(name, *columns,
                    sa.Column('status', sa.String(16), nullable=False),
                    sa.Column('attempts', sa.Integer(), nullable=False),
                    sa.Column('next_attempt_at', UTC, nullable=True),
                    sa.Column('last_error', sa.Text(), nullable=True),
                    sa.Column('synced_at', UTC, nullable=True),
                    sa.Column('tenant_id', sa.Uuid(), sa.ForeignKey(
                        'tenants.id', name=op.f(f'fk_{name}_tenant_id_tenants'),
                        ondelete='CASCADE'), nullable=False),
                    sa.Column('id', sa.Uuid(), nullable=False),
                    sa.Column('created_at', UTC, nullable=False),
                    sa.PrimaryKeyConstraint('id', name=op.f(f'pk_{name}')))
    op.create_index(op.f(f'ix_{name}_tenant_id'), name, ['tenant_id'])


def upgrade() -> None:
    _owned('stripe_plans',
           sa.Column('plan_id', sa.Uuid(), sa.ForeignKey(
               'plans.id', name='fk_stripe_plans_plan_id_plans', ondelete='CASCADE'),
               nullable=False),
           sa.Column('wanted_version', sa.Integer(), nullable=False),
           sa.Column('version', sa.Integer(), nullable=True),
           sa.Column('product_id', sa.String(255), nullable=True),
           sa.Column('prices', sa.JSON(), nullable=False),
           sa.Column('building', sa.JSON(), nullable=False),
           sa.UniqueConstraint('plan_id', name='uq_stripe_plans_plan_id'))
    _owned('stripe_subscriptions',
           sa.Column('owner_id', sa.Uuid(), nullable=True),
           sa.Column('plan_id', sa.Uuid(), nullable=True),
           sa.Column('plan_version', sa.Integer(), nullable=True),
           sa.Column('subscription_id', sa.String(255), nullable=True),
           sa.Column('schedule_id', sa.String(255), nullable=True),
           sa.Column('prices', sa.JSON(), nullable=False),
           sa.UniqueConstraint('tenant_id', name='uq_stripe_subscriptions_tenant_id'))
    for name in TENANT_TABLES:
        rls.enable_tenant_rls(op, name)


def downgrade() -> None:
    for name in TENANT_TABLES:
        rls.disable_tenant_rls(op, name)
    for name in ('stripe_subscriptions', 'stripe_plans'):
        op.drop_table(name)
