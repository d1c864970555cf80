"""stripe: agencies' own accounts, customers, meters, the meter-event outbox, invoices,
processed webhook events

- `stripe_accounts`, `stripe_customers`, `stripe_meters`, `meter_event_outbox`,
  `stripe_invoices`: tenant-owned, row-level security (overture/billing/stripe_models.py).
- `stripe_links` (a Stripe id -> the tenant it stands for, ids only) and
  `stripe_webhook_events` (the ids of processed events): not tenant-owned, read before
  a webhook knows its tenant.

Revision ID: 0030
Revises: 0029 (after the budgets merge; 0026 on its own)
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import overture.platform.db
from overture.platform import rls

revision = '0030'
down_revision = '0029'
branch_labels = None
depends_on = None

UTC = overture.platform.db.UTCDateTime(timezone=True)
TENANT_TABLES = ("stripe_accounts", "stripe_customers", "stripe_meters",
                 "meter_event_outbox", "stripe_invoices")


def _owned(name: str, *columns: sa.Column, fk: bool = True) -> None:
    tenant = (sa.Column('tenant_id', sa.Uuid(), sa.ForeignKey(
        'tenants.id', name=op.f(f'fk_{name}_tenant_id_tenants'), ondelete='CASCADE'),
        nullable=False) if fk else sa.Column('tenant_id', sa.Uuid(), nullable=False))
    op.create_table(name, *columns, tenant,
                    sa.Column('id', sa.Uuid(), nullable=False),
                    sa.Column('created_at', UTC, nullable=False),
                    sa.PrimaryKeyConstraint('id', name=op.f(f'pk_{name}')))
    if fk:
        op.create_index(op.f(f'ix_{name}_tenant_id'), name, ['tenant_id'])


def upgrade() -> None:
    _owned('stripe_accounts',
           sa.Column('mode', sa.String(16), nullable=False),
           sa.Column('credential_id', sa.Uuid(), sa.ForeignKey(
               'credentials.id', name='fk_stripe_accounts_credential_id_credentials',
               ondelete='SET NULL'), nullable=True),
           sa.Column('connect_account_id', sa.String(255), nullable=True),
           sa.Column('key_hint', sa.String(40), nullable=True),
           sa.Column('updated_at', UTC, nullable=False),
           sa.Column('last_tested_at', UTC, nullable=True),
           sa.Column('last_test_error', sa.Text(), nullable=True),
           sa.UniqueConstraint('tenant_id', name='uq_stripe_accounts_tenant_id'))
    op.create_table('stripe_links',
                    sa.Column('stripe_id', sa.String(255), nullable=False),
                    sa.Column('kind', sa.String(16), nullable=False),
                    sa.Column('routes_to', sa.Uuid(), sa.ForeignKey(
                        'tenants.id', name='fk_stripe_links_routes_to_tenants',
                        ondelete='CASCADE'), nullable=False),
                    sa.Column('owner_id', sa.Uuid(), nullable=False),
                    sa.Column('created_at', UTC, nullable=False),
                    sa.PrimaryKeyConstraint('stripe_id', name='pk_stripe_links'))
    _owned('stripe_customers',
           sa.Column('owner_id', sa.Uuid(), nullable=False),
           sa.Column('customer_id', sa.String(255), nullable=False),
           sa.Column('subscription_id', sa.String(255), nullable=True),
           sa.Column('subscription_status', sa.String(40), nullable=True),
           sa.Column('updated_at', UTC, nullable=False),
           sa.UniqueConstraint('tenant_id', 'owner_id',
                               name='uq_stripe_customers_tenant_id_owner_id'))
    _owned('stripe_meters',
           sa.Column('meter', sa.String(40), nullable=False),
           sa.Column('event_name', sa.String(100), nullable=False),
           sa.Column('stripe_meter_id', sa.String(255), nullable=False),
           sa.UniqueConstraint('tenant_id', 'meter', name='uq_stripe_meters_tenant_id_meter'))
    _owned('meter_event_outbox',
           sa.Column('owner_id', sa.Uuid(), nullable=False),
           sa.Column('billed_id', sa.Uuid(), nullable=False),
           sa.Column('meter', sa.String(40), nullable=False),
           sa.Column('hour', UTC, nullable=False),
           sa.Column('quantity', sa.Numeric(20, 6), nullable=False),
           sa.Column('identifier', sa.String(200), nullable=False),
           sa.Column('status', sa.String(16), nullable=False),
           sa.Column('attempts', sa.Integer(), nullable=False),
           sa.Column('next_attempt_at', UTC, nullable=True),
           sa.Column('last_error', sa.Text(), nullable=True),
           sa.Column('sent_at', UTC, nullable=True),
           sa.UniqueConstraint('identifier', name='uq_meter_event_outbox_identifier'),
           fk=False)
    op.create_index('ix_meter_event_outbox_due', 'meter_event_outbox',
                    ['tenant_id', 'status', 'next_attempt_at'])
    _owned('stripe_invoices',
           sa.Column('owner_id', sa.Uuid(), nullable=False),
           sa.Column('invoice_id', sa.String(255), nullable=False),
           sa.Column('number', sa.String(100), nullable=True),
           sa.Column('status', sa.String(40), nullable=False),
           sa.Column('currency', sa.String(3), nullable=False),
           sa.Column('total', sa.Numeric(20, 2), nullable=False),
           sa.Column('period_start', UTC, nullable=True),
           sa.Column('period_end', UTC, nullable=True),
           sa.Column('hosted_url', sa.String(2000), nullable=True),
           sa.Column('updated_at', UTC, nullable=False),
           sa.UniqueConstraint('invoice_id', name='uq_stripe_invoices_invoice_id'))
    op.create_table('stripe_webhook_events',
                    sa.Column('event_id', sa.String(255), nullable=False),
                    sa.Column('type', sa.String(100), nullable=False),
                    sa.Column('account', sa.String(255), nullable=True),
                    sa.Column('received_at', UTC, nullable=False),
                    sa.PrimaryKeyConstraint('event_id', name='pk_stripe_webhook_events'))
    for name in TENANT_TABLES:
        rls.enable_tenant_rls(op, name)


def downgrade() -> None:
    for name in TENANT_TABLES:
        rls.disable_tenant_rls(op, name)
    for name in ('stripe_webhook_events', 'stripe_invoices', 'meter_event_outbox',
                 'stripe_meters', 'stripe_customers', 'stripe_links', 'stripe_accounts'):
        op.drop_table(name)
