"""webhook rate: each workflow's webhook takes its own number of calls a minute

- `workflows.webhook_rate_per_minute`: null for every existing workflow, which means
  the installation's default (OVERTURE_WEBHOOK_RATE_PER_MINUTE); never above the
  installation's ceiling (OVERTURE_WEBHOOK_RATE_CEILING).

Revision ID: 0036
Revises: 0035
Create Date: 2026-12-09
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0036'
down_revision = '0035'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('workflows', schema=None) as batch_op:
        batch_op.add_column(sa.Column('webhook_rate_per_minute', sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('workflows', schema=None) as batch_op:
        batch_op.drop_column('webhook_rate_per_minute')
