"""step admissions: a cap on steps counts the steps it let start this month

- `budget_counters.admitted`: on the counter of a cap on `steps`, how many steps the cap
  has let start this calendar month (overture/billing/step_caps.py); 0 on the others.

Revision ID: 0038
Revises: 0037
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0038'
down_revision = '0037'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('budget_counters', sa.Column(
        'admitted', sa.Numeric(precision=20, scale=6), nullable=False, server_default='0'))


def downgrade() -> None:
    op.drop_column('budget_counters', 'admitted')
