"""workflow versions keep what publishing pinned (agent versions)

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('workflow_versions', sa.Column('pins', sa.JSON(), nullable=False,
                                                 server_default='{}'))


def downgrade() -> None:
    op.drop_column('workflow_versions', 'pins')
