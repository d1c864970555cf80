"""plans and billing accounts

- `plans` (tenant-owned, row-level security): a plan defined by the platform (wholesale,
  for agencies) or an agency (retail, for its clients): currency, monthly base fee and
  price book (JSON, exact decimal strings), a version raised at each edit.
- `billing_accounts` (tenant-owned by the billed tenant, row-level security): the plan a
  tenant is billed at and who bills it; the foreign key keeps a plan in use from being
  deleted.

Revision ID: 0028
Revises: 0026
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import overture.platform.db
from overture.platform import rls

revision = '0028'
down_revision = '0026'
branch_labels = None
depends_on = None

TABLES = ("billing_accounts", "plans")


def upgrade() -> None:
    op.create_table('plans',
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('base_fee', sa.Numeric(precision=18, scale=4), nullable=False),
    sa.Column('price_book', sa.JSON(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('updated_at', overture.platform.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', overture.platform.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('tenant_id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'],
                            name=op.f('fk_plans_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_plans')),
    sa.UniqueConstraint('tenant_id', 'name', name=op.f('uq_plans_tenant_id_name'))
    )
    with op.batch_alter_table('plans', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_plans_tenant_id'), ['tenant_id'], unique=False)
    rls.enable_tenant_rls(op, 'plans')

    op.create_table('billing_accounts',
    sa.Column('plan_id', sa.Uuid(), nullable=False),
    sa.Column('billed_by_id', sa.Uuid(), nullable=False),
    sa.Column('since', overture.platform.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', overture.platform.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('tenant_id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['billed_by_id'], ['tenants.id'],
                            name=op.f('fk_billing_accounts_billed_by_id_tenants')),
    sa.ForeignKeyConstraint(['plan_id'], ['plans.id'],
                            name=op.f('fk_billing_accounts_plan_id_plans'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'],
                            name=op.f('fk_billing_accounts_tenant_id_tenants'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_billing_accounts')),
    sa.UniqueConstraint('tenant_id', name=op.f('uq_billing_accounts_tenant_id'))
    )
    with op.batch_alter_table('billing_accounts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_billing_accounts_plan_id'), ['plan_id'],
                              unique=False)
        batch_op.create_index(batch_op.f('ix_billing_accounts_tenant_id'), ['tenant_id'],
                              unique=False)
    rls.enable_tenant_rls(op, 'billing_accounts')


def downgrade() -> None:
    for name in TABLES:
        rls.disable_tenant_rls(op, name)
        with op.batch_alter_table(name, schema=None) as batch_op:
            if name == 'billing_accounts':
                batch_op.drop_index(batch_op.f('ix_billing_accounts_plan_id'))
            batch_op.drop_index(batch_op.f(f'ix_{name}_tenant_id'))
        op.drop_table(name)
