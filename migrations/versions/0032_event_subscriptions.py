"""event subscriptions: signed outbound events

- `event_subscriptions`: a URL, the event types it takes, whether it is enabled, and
  the vault credential with its Standard Webhooks secret(s).
- `event_deliveries`: the outbox, one row per event and subscription, written in the
  transaction of the event; its id is the `webhook-id`.
- `event_attempts`: the delivery log.
All tenant-owned, row-level security (overture/tenants/events/models.py).

Revision ID: 0032
Revises: 0031
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import overture.platform.db
from overture.platform import rls

revision = '0032'
down_revision = '0031'
branch_labels = None
depends_on = None

UTC = overture.platform.db.UTCDateTime(timezone=True)
TABLES = ("event_subscriptions", "event_deliveries", "event_attempts")


def _owned(name: str, *columns: sa.Column) -> None:
    op.create_table(name, *columns,
                    sa.Column('tenant_id', sa.Uuid(), sa.ForeignKey(
                        'tenants.id', name=op.f(f'fk_{name}_tenant_id_tenants'),
                        ondelete='CASCADE'), nullable=False),
                    sa.Column('id', sa.Uuid(), nullable=False),
                    sa.Column('created_at', UTC, nullable=False),
                    sa.PrimaryKeyConstraint('id', name=op.f(f'pk_{name}')))
    op.create_index(op.f(f'ix_{name}_tenant_id'), name, ['tenant_id'])
    rls.enable_tenant_rls(op, name)


def upgrade() -> None:
    _owned('event_subscriptions',
           sa.Column('url', sa.String(length=2000), nullable=False),
           sa.Column('event_types', sa.JSON(), nullable=False),
           sa.Column('enabled', sa.Boolean(), nullable=False),
           sa.Column('description', sa.String(length=500), nullable=False),
           sa.Column('include_clients', sa.Boolean(), nullable=False),
           sa.Column('credential_id', sa.Uuid(), sa.ForeignKey(
               'credentials.id', name=op.f('fk_event_subscriptions_credential_id_credentials')),
               nullable=False),
           sa.Column('previous_expires_at', UTC, nullable=True),
           sa.Column('disabled_reason', sa.String(length=500), nullable=True),
           sa.Column('disabled_at', UTC, nullable=True),
           sa.Column('created_by_id', sa.Uuid(), nullable=True))
    _owned('event_deliveries',
           sa.Column('subscription_id', sa.Uuid(), sa.ForeignKey(
               'event_subscriptions.id', ondelete='CASCADE',
               name=op.f('fk_event_deliveries_subscription_id_event_subscriptions')),
               nullable=False),
           sa.Column('event_type', sa.String(length=60), nullable=False),
           sa.Column('source_tenant_id', sa.Uuid(), nullable=False),
           sa.Column('body', sa.Text(), nullable=False),
           sa.Column('status', sa.String(length=16), nullable=False),
           sa.Column('attempts', sa.Integer(), nullable=False),
           sa.Column('next_attempt_at', UTC, nullable=True),
           sa.Column('delivered_at', UTC, nullable=True),
           sa.Column('last_status_code', sa.Integer(), nullable=True),
           sa.Column('last_error', sa.Text(), nullable=True))
    op.create_index(op.f('ix_event_deliveries_subscription_id'), 'event_deliveries',
                    ['subscription_id'])
    op.create_index('ix_event_deliveries_due', 'event_deliveries',
                    ['status', 'next_attempt_at'])
    _owned('event_attempts',
           sa.Column('delivery_id', sa.Uuid(), sa.ForeignKey(
               'event_deliveries.id', ondelete='CASCADE',
               name=op.f('fk_event_attempts_delivery_id_event_deliveries')), nullable=False),
           sa.Column('attempted_at', UTC, nullable=False),
           sa.Column('status_code', sa.Integer(), nullable=True),
           sa.Column('latency_ms', sa.Integer(), nullable=False),
           sa.Column('error', sa.Text(), nullable=True),
           sa.Column('manual', sa.Boolean(), nullable=False))
    op.create_index(op.f('ix_event_attempts_delivery_id'), 'event_attempts', ['delivery_id'])


def downgrade() -> None:
    for name in reversed(TABLES):
        rls.disable_tenant_rls(op, name)
        op.drop_table(name)
