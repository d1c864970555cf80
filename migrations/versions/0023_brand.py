"""brand: a tenant's brand and its uploaded images

- `brands` (tenant-owned, row-level security): one row per tenant that set any part of
  its brand; NULL fields inherit (workspace -> agency -> platform default). An agency's
  row also says whether its client workspaces may override it and whether white-label
  is on for all of them.
- `brand_assets` (tenant-owned, row-level security): logos and favicons, re-encoded,
  named by a hash of their bytes.

Revision ID: 0023
Revises: 0020
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import overture.platform.db
from overture.platform import rls

revision = '0023'
down_revision = '0022'
branch_labels = None
depends_on = None

TABLES = ("brands", "brand_assets")


def upgrade() -> None:
    op.create_table('brands',
    sa.Column('product_name', sa.String(length=80), nullable=True),
    sa.Column('logo', sa.String(length=64), nullable=True),
    sa.Column('logo_dark', sa.String(length=64), nullable=True),
    sa.Column('favicon', sa.String(length=64), nullable=True),
    sa.Column('primary', sa.String(length=7), nullable=True),
    sa.Column('accent', sa.String(length=7), nullable=True),
    sa.Column('font', sa.String(length=32), nullable=True),
    sa.Column('support_email', sa.String(length=254), nullable=True),
    sa.Column('support_url', sa.String(length=500), nullable=True),
    sa.Column('legal_footer', sa.Text(), nullable=True),
    sa.Column('sender_name', sa.String(length=80), nullable=True),
    sa.Column('clients_may_override', sa.Boolean(), server_default=sa.true(), nullable=False),
    sa.Column('white_label', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('tenant_id', sa.Uuid(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', overture.platform.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_brands_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_brands')),
    sa.UniqueConstraint('tenant_id', name=op.f('uq_brands_tenant_id'))
    )
    op.create_index(op.f('ix_brands_tenant_id'), 'brands', ['tenant_id'], unique=False)
    op.create_table('brand_assets',
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('content_type', sa.String(length=32), nullable=False),
    sa.Column('width', sa.Integer(), nullable=False),
    sa.Column('height', sa.Integer(), nullable=False),
    sa.Column('data', sa.LargeBinary(), nullable=False),
    sa.Column('tenant_id', sa.Uuid(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', overture.platform.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_brand_assets_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_brand_assets')),
    sa.UniqueConstraint('tenant_id', 'name', name=op.f('uq_brand_assets_tenant_id_name'))
    )
    op.create_index(op.f('ix_brand_assets_tenant_id'), 'brand_assets', ['tenant_id'], unique=False)
    for table in TABLES:
        rls.enable_tenant_rls(op, table)


def downgrade() -> None:
    for table in reversed(TABLES):
        rls.disable_tenant_rls(op, table)
    op.drop_index(op.f('ix_brand_assets_tenant_id'), table_name='brand_assets')
    op.drop_table('brand_assets')
    op.drop_index(op.f('ix_brands_tenant_id'), table_name='brands')
    op.drop_table('brands')
