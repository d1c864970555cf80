"""a deleted plan's Stripe product is archived, not left for sale

`stripe_plans.plan_id` becomes nullable with ON DELETE SET NULL: deleting a plan keeps
its row (pending), and the billing pass archives the product and its prices in the
owner's Stripe account, then drops the row.

Revision ID: 0034
Revises: 0032
Create Date: 2026-12-06
"""

from __future__ import annotations

from alembic import op

revision = '0034'
down_revision = '0032'
branch_labels = None
depends_on = None

FK = 'fk_stripe_plans_plan_id_plans'


def _plan_fk(ondelete: str, nullable: bool) -> None:
    with op.batch_alter_table('stripe_plans', schema=None) as batch_op:
        batch_op.drop_constraint(FK, type_='foreignkey')
        batch_op.alter_column('plan_id', nullable=nullable)
        batch_op.create_foreign_key(FK, 'plans', ['plan_id'], ['id'], ondelete=ondelete)


def upgrade() -> None:
    _plan_fk('SET NULL', nullable=True)


def downgrade() -> None:
    op.execute("DELETE FROM stripe_plans WHERE plan_id IS NULL")
    _plan_fk('CASCADE', nullable=False)
