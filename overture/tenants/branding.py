"""Brands: what a tenant's people and customers see instead of the platform's name.

The effective brand of a tenant is built field by field: the platform default, then
the agency's brand, then (for a client workspace, when its agency lets clients
override) the workspace's own. White-label is the agency's switch for itself and all
its clients: with it on, nothing falls back to the platform's name.

Nothing here is cached across requests: every page and mail reads the rows it needs
(two small ones at most), so a change shows on the next page, in every process, without
a restart or an invalidation to forget.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit

from flask import has_app_context
from sqlalchemy import delete, select

from overture.platform import audit, mail
from overture.platform.db import db, in_tenant
from overture.platform.errors import Forbidden, ValidationFailed
from overture.platform.validation import text_problem
from overture.tenants import brand_images, brand_style, domains
from overture.tenants.access import Access, memberships_of
from overture.tenants.brand_models import Brand, BrandAsset
from overture.tenants.models import Tenant, TenantKind, TenantStatus, User
from overture.tenants.users import normalize_email

ASSET_PATH = "/brand-assets"  # served by web/brand_pages.py
TEXT_FIELDS = ("product_name", "primary", "accent", "font", "support_email", "support_url",
               "legal_footer", "sender_name")
AGENCY_FIELDS = ("clients_may_override", "white_label")
ASSET_FIELDS = brand_images.KINDS
MAX_LENGTHS = {"product_name": 80, "support_email": 254, "support_url": 500,
               "legal_footer": 1000, "sender_name": 80}
PLATFORM_NAME = "Overture"


@dataclass(frozen=True)
class EffectiveBrand:
    """What templates get as `brand` (and mail templates too)."""

    product_name: str = PLATFORM_NAME
    primary: str = "#3451d1"
    accent: str = "#7d93ff"
    font_key: str = "system"
    logo_url: str | None = None
    logo_dark_url: str | None = None
    favicon_url: str | None = None
    support_email: str | None = None
    support_url: str | None = None
    legal_footer: str | None = None
    sender_name: str = PLATFORM_NAME
    white_label: bool = False
    tenant_id: uuid.UUID | None = None
    sources: dict[str, str] = field(default_factory=dict)  # field -> "agency" | "workspace"

    @property
    def name(self) -> str:
        return self.product_name  # the mail templates' name for it

    @property
    def font(self) -> str:
        return brand_style.FONTS[self.font_key].family

    @property
    def on_primary(self) -> str:
        return brand_style.readable_on(self.primary)

    @property
    def on_accent(self) -> str:
        return brand_style.readable_on(self.accent)

    @property
    def powered_by(self) -> str | None:
        """The platform's name in a footer: only where white-label is off and the page
        does not already carry it."""
        return None if self.white_label or self.product_name == PLATFORM_NAME else PLATFORM_NAME

    @property
    def initial(self) -> str:
        return (self.product_name.strip()[:1] or "·").upper()

    @property
    def css(self) -> str:
        return brand_style.brand_css(self.primary, self.accent, self.font_key)

    def public(self) -> dict[str, Any]:
        return {"product_name": self.product_name, "logo_url": self.logo_url,
                "logo_dark_url": self.logo_dark_url, "favicon_url": self.favicon_url,
                "primary": self.primary, "accent": self.accent, "on_primary": self.on_primary,
                "on_accent": self.on_accent, "font": self.font_key,
                "font_family": self.font, "support_email": self.support_email,
                "support_url": self.support_url, "legal_footer": self.legal_footer,
                "sender_name": self.sender_name,
                "white_label": self.white_label}


PLATFORM_DEFAULT = EffectiveBrand()


# --------------------------------------------------------------------------- reading


def _row(tenant_id: uuid.UUID) -> Brand | None:
    # No autoflush: the caller's pending rows belong to its own scope, not this one.
    with db.session.no_autoflush, in_tenant(tenant_id):
        return db.session.scalars(select(Brand).where(Brand.tenant_id == tenant_id)
                                  .execution_options(populate_existing=True)).one_or_none()


def agency_of(tenant: Tenant) -> Tenant | None:
    """The tenant whose brand a tenant inherits: its agency (an agency is its own)."""
    if tenant.kind == TenantKind.AGENCY:
        return tenant
    if tenant.kind == TenantKind.WORKSPACE and tenant.parent is not None:
        return tenant.parent
    return None


def asset_url(tenant_id: uuid.UUID, name: str) -> str:
    return f"{ASSET_PATH}/{tenant_id}/{name}"


def _layer(brand: EffectiveBrand, row: Brand, source: str) -> EffectiveBrand:
    changes: dict[str, Any] = {}
    for name in TEXT_FIELDS:
        value = getattr(row, name)
        if value is not None:
            changes["font_key" if name == "font" else name] = value
    for kind in ASSET_FIELDS:
        value = getattr(row, kind)
        if value is not None:
            changes[f"{kind}_url"] = asset_url(row.tenant_id, value)
    sources = {**brand.sources, **{k: source for k in changes}}
    return replace(brand, **changes, sources=sources)


def effective(tenant_id: uuid.UUID | None) -> EffectiveBrand:
    """The brand a tenant's pages and mail show (the platform default for None)."""
    tenant = db.session.get(Tenant, tenant_id) if tenant_id is not None else None
    if tenant is None:
        return PLATFORM_DEFAULT
    agency = agency_of(tenant)
    if agency is None:
        return PLATFORM_DEFAULT
    brand = replace(PLATFORM_DEFAULT, tenant_id=tenant.id)
    agency_row = _row(agency.id)
    if agency_row is not None:
        brand = _layer(brand, agency_row, "agency")
    if tenant.id != agency.id and (agency_row is None or agency_row.clients_may_override):
        own = _row(tenant.id)
        if own is not None:
            brand = _layer(brand, own, "workspace")
    if agency_row is not None and agency_row.white_label:
        brand = replace(brand, white_label=True)
        if "product_name" not in brand.sources:
            # Never the platform's name: the agency's own is the least surprising one.
            brand = replace(brand, product_name=agency.name)
    if brand.logo_dark_url is None and brand.logo_url is not None:
        brand = replace(brand, logo_dark_url=brand.logo_url)
    if "sender_name" not in brand.sources:
        brand = replace(brand, sender_name=brand.product_name)
    return brand


def home_tenant_id(user: User) -> uuid.UUID | None:
    """The tenant whose brand a signed-in person sees where no page names one: their
    only tenant, or the agency every tenant of theirs belongs to."""
    tenants = [m.tenant for m in memberships_of(user) if m.tenant.status != TenantStatus.DELETED]
    if len(tenants) == 1:
        return tenants[0].id
    agencies = {a.id if (a := agency_of(t)) else None for t in tenants}
    if len(agencies) == 1 and None not in agencies:
        return agencies.pop()
    return None


def own_settings(tenant: Tenant) -> dict[str, Any]:
    """The fields this tenant set itself (None: inherited), with its asset URLs."""
    row = _row(tenant.id)
    values: dict[str, Any] = {name: getattr(row, name) if row else None for name in TEXT_FIELDS}
    for kind in ASSET_FIELDS:
        name = getattr(row, kind) if row else None
        values[f"{kind}_url"] = asset_url(tenant.id, name) if name else None
    if tenant.kind == TenantKind.AGENCY:
        values["clients_may_override"] = row.clients_may_override if row else True
        values["white_label"] = row.white_label if row else False
    return values


def edit_refusal(tenant: Tenant) -> str | None:
    """Why this tenant's brand cannot be changed, or None when it can."""
    if tenant.kind == TenantKind.WORKSPACE and tenant.parent is not None:
        agency_row = _row(tenant.parent.id)
        if agency_row is not None and not agency_row.clients_may_override:
            return (f"{tenant.parent.name} does not let its client workspaces change their "
                    "brand: ask the agency to change it, or to allow it")
    if tenant.kind not in (TenantKind.AGENCY, TenantKind.WORKSPACE):
        return "the platform's own brand is not set here"
    return None


def view(tenant: Tenant) -> dict[str, Any]:
    """A tenant's brand as the API and the console show it."""
    refusal = edit_refusal(tenant)
    return {"tenant_id": tenant.id, "kind": tenant.kind, "own": own_settings(tenant),
            "effective": effective(tenant.id).public(), "editable": refusal is None,
            "not_editable_because": refusal,
            "fonts": [{"key": f.key, "label": f.label} for f in brand_style.FONTS.values()]}


def asset(tenant_id: uuid.UUID, name: str) -> BrandAsset | None:
    with db.session.no_autoflush, in_tenant(tenant_id):
        return db.session.scalars(select(BrandAsset).where(
            BrandAsset.tenant_id == tenant_id, BrandAsset.name == name)).one_or_none()


# --------------------------------------------------------------------------- validation


def validate(tenant: Tenant, changes: dict[str, Any]) -> dict[str, Any]:
    """The changes cleaned (empty text is None: inherit), or ValidationFailed naming
    every field that is wrong at once."""
    errors: list[dict[str, str]] = []
    clean: dict[str, Any] = {}
    for name, raw in changes.items():
        try:
            clean[name] = _clean(tenant, name, raw)
        except ValidationFailed as exc:
            errors += exc.errors
    colours = {k: clean.get(k) for k in ("primary", "accent")}
    for name, message in brand_style.contrast_problems(**colours).items():
        errors.append({"field": name, "message": message})
    if errors:
        raise ValidationFailed(errors)
    return clean


def _clean(tenant: Tenant, name: str, raw: Any) -> Any:
    def fail(message: str) -> ValidationFailed:
        return ValidationFailed.field(name, message)

    if name in AGENCY_FIELDS:
        if tenant.kind != TenantKind.AGENCY:
            raise fail("is set by the agency, for all its client workspaces")
        if not isinstance(raw, bool):
            raise fail("must be true or false")
        return raw
    if name not in TEXT_FIELDS:
        raise fail("is not a brand field")
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    if not isinstance(raw, str):
        raise fail("must be text, or null to inherit")
    value = raw.strip()
    if name in MAX_LENGTHS and len(value) > MAX_LENGTHS[name]:
        raise fail(f"must be at most {MAX_LENGTHS[name]} characters")
    if (problem := text_problem(value, multiline=name == "legal_footer")) is not None:
        raise fail(problem)
    if name in ("primary", "accent"):
        colour = brand_style.parse_colour(value)
        if colour is None:
            raise fail("must be a colour written #rrggbb, such as #1d4ed8")
        return colour
    if name == "font":
        if value not in brand_style.FONTS:
            raise fail("must be one of " + ", ".join(brand_style.FONTS))
        return value
    if name == "support_email":
        return normalize_email(value, name)
    if name == "support_url":
        parts = urlsplit(value)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise fail("must be a web address starting with https://")
        return value
    if name == "sender_name" and any(c in value for c in '<>"@'):
        raise fail('may not hold <, >, " or @: it is the name shown beside the address')
    return value


# --------------------------------------------------------------------------- changing


def _editable(access: Access) -> Tenant:
    access.require("tenant.manage")
    tenant = access.require_tenant()
    if (refusal := edit_refusal(tenant)) is not None:
        raise Forbidden(refusal)
    return tenant


def _own_row(tenant: Tenant) -> Brand:
    row = _row(tenant.id)
    if row is None:
        row = Brand(tenant_id=tenant.id)
        db.session.add(row)
    return row


def update(access: Access, changes: dict[str, Any]) -> Tenant:
    """Set (or, with None, clear) brand fields of the tenant acted in. All or nothing:
    one wrong field leaves every field as it was."""
    tenant = _editable(access)
    clean = validate(tenant, changes)
    row = _own_row(tenant)
    changed = {k: v for k, v in clean.items() if getattr(row, k) != v}
    for name, value in changed.items():
        setattr(row, name, value)
    db.session.flush()
    if changed:
        audit.record("brand.updated", target_type="tenant", target_id=tenant.id,
                     details={"changed": changed}, tenant_id=tenant.id)
    return tenant


def put_asset(access: Access, kind: str, data: bytes) -> Tenant:
    """Store a logo, dark logo or favicon (checked and re-encoded) in place of the
    previous one."""
    tenant = _editable(access)
    image = brand_images.clean(kind, data)
    row = _own_row(tenant)
    previous = getattr(row, kind)
    if asset(tenant.id, image.name) is None:
        db.session.add(BrandAsset(tenant_id=tenant.id, name=image.name, kind=kind,
                                  content_type=image.content_type, width=image.width,
                                  height=image.height, data=image.data))
    setattr(row, kind, image.name)
    if previous and previous != image.name:
        _drop(tenant.id, previous)
    db.session.flush()
    audit.record("brand.asset_uploaded", target_type="tenant", target_id=tenant.id,
                 details={"kind": kind, "name": image.name, "bytes": len(image.data),
                          "width": image.width, "height": image.height},
                 tenant_id=tenant.id)
    return tenant


def remove_asset(access: Access, kind: str) -> Tenant:
    tenant = _editable(access)
    row = _row(tenant.id)
    previous = getattr(row, kind) if row is not None else None
    if row is not None and previous:
        setattr(row, kind, None)
        _drop(tenant.id, previous)
        db.session.flush()
        audit.record("brand.asset_removed", target_type="tenant", target_id=tenant.id,
                     details={"kind": kind, "name": previous}, tenant_id=tenant.id)
    return tenant


def _drop(tenant_id: uuid.UUID, name: str) -> None:
    with in_tenant(tenant_id):
        db.session.execute(delete(BrandAsset).where(BrandAsset.tenant_id == tenant_id,
                                                    BrandAsset.name == name))


# --------------------------------------------------------------------------- mail


def mail_brand(tenant_id: uuid.UUID | None) -> dict[str, Any]:
    """The brand a mail about `tenant_id` carries (platform/mail.py's resolver): image
    URLs absolute on the tenant's own address (its verified domain, else the
    installation's), as a mail client needs, and that address as `base_url`. A URL
    rather than an attached image: a logo may weigh up to a megabyte, and every alert
    would carry it; the URL names the image for ever (immutable, cached)."""
    brand = effective(tenant_id)
    base = domains.public_base_url(tenant_id) if has_app_context() else ""
    values = {**brand.public(), "name": brand.product_name, "base_url": base}
    for key in ("logo_url", "logo_dark_url", "favicon_url"):
        if values[key]:
            values[key] = base.rstrip("/") + values[key]
    return values


def install_mail_brand() -> None:
    mail.set_brand_resolver(mail_brand)
