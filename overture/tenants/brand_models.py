"""A tenant's brand and its uploaded images (tenant-owned, under row-level security).

Every brand field is nullable: NULL means "not set here", so the effective brand takes
it from the next layer (the agency, then the platform default, `tenants/branding.py`).
Images are stored in the database, re-encoded (`tenants/brand_images.py`), under a name
that carries a hash of their bytes: a URL names one image for ever and may be cached so.
"""

from __future__ import annotations

from sqlalchemy import LargeBinary, String, Text, UniqueConstraint, false, true
from sqlalchemy.orm import Mapped, mapped_column

from overture.platform.db import TenantOwned, db


class Brand(TenantOwned, db.Model):
    __tablename__ = "brands"
    __table_args__ = (UniqueConstraint("tenant_id"),)

    product_name: Mapped[str | None] = mapped_column(String(80))
    logo: Mapped[str | None] = mapped_column(String(64))  # a BrandAsset name
    logo_dark: Mapped[str | None] = mapped_column(String(64))
    favicon: Mapped[str | None] = mapped_column(String(64))
    primary: Mapped[str | None] = mapped_column(String(7))  # "#rrggbb"
    accent: Mapped[str | None] = mapped_column(String(7))
    font: Mapped[str | None] = mapped_column(String(32))  # a key of brand_style.FONTS
    support_email: Mapped[str | None] = mapped_column(String(254))
    support_url: Mapped[str | None] = mapped_column(String(500))
    legal_footer: Mapped[str | None] = mapped_column(Text)
    sender_name: Mapped[str | None] = mapped_column(String(80))
    # An agency's settings for its client workspaces (ignored on a workspace's row).
    clients_may_override: Mapped[bool] = mapped_column(default=True, server_default=true())
    white_label: Mapped[bool] = mapped_column(default=False, server_default=false())


class BrandAsset(TenantOwned, db.Model):
    __tablename__ = "brand_assets"
    __table_args__ = (UniqueConstraint("tenant_id", "name"),)

    name: Mapped[str] = mapped_column(String(64))  # "<kind>-<hash>.<ext>"
    kind: Mapped[str] = mapped_column(String(16))
    content_type: Mapped[str] = mapped_column(String(32))
    width: Mapped[int]
    height: Mapped[int]
    data: Mapped[bytes] = mapped_column(LargeBinary)
