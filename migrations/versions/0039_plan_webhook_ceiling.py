"""a plan's ceiling on its tenants' webhook rates

`plans.webhook_rate_ceiling`: the most calls a minute a workflow's webhook of a tenant
billed at the plan may take (NULL: only the installation's ceiling).

Revision ID: 0039
Revises: 0038
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0039'
down_revision = '0038'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('plans', schema=None) as batch_op:
        batch_op.add_column(sa.Column('webhook_rate_ceiling', sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('plans', schema=None) as batch_op:
        batch_op.drop_column('webhook_rate_ceiling')
