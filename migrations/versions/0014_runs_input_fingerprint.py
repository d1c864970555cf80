"""runs: the fingerprint of the input a run's idempotency key was first used with

The same Idempotency-Key with a different input answered with the first run, hiding
the caller's bug. A run started with a key now keeps the SHA-256 of its input's
canonical JSON, and a reuse of the key with another input is refused (422,
`idempotency-key-reused`). Runs from before keep NULL: their key's reuse is answered
as before. A column of an existing tenant-owned table: its row-level security policy
already covers it.

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('input_fingerprint', sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.drop_column('input_fingerprint')
