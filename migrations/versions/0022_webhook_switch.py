"""webhook switch: a workflow's webhook can be turned off without losing its URL

- `workflows.webhook_enabled`: true for every existing workflow (their webhooks were
  all live); while false the webhook refuses calls with 409 and starts nothing.

Revision ID: 0022
Revises: 0020
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0022'
down_revision = '0020'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # batch_alter_table: SQLite (the embedded mode) rebuilds the table, PostgreSQL alters
    # it in place; the server default fills the existing rows either way.
    with op.batch_alter_table('workflows', schema=None) as batch_op:
        batch_op.add_column(sa.Column('webhook_enabled', sa.Boolean(), nullable=False,
                                      server_default=sa.true()))


def downgrade() -> None:
    with op.batch_alter_table('workflows', schema=None) as batch_op:
        batch_op.drop_column('webhook_enabled')
