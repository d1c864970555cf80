"""The brand on every page: the `brand` and `brand_css` every template gets, and the
brand images at /brand-assets/<tenant-id>/<kind>-<hash>.<ext>.

Which tenant's brand a request shows: `g.brand_tenant_id` (a page acting for a tenant:
the console's workspace, the portal's tenant, an approval link's tenant), else
`g.host_tenant_id` (a verified custom domain), else the signed-in person's tenant when
they belong to one (or to several under one agency), else the platform's.

`brand_css` is the only inline style a page has. The Content-Security-Policy allows it
by its SHA-256 (web/headers.py), so it must stand alone in its element:
`<style>{{ brand_css }}</style>`, no whitespace around it.
"""

from __future__ import annotations

import base64
import hashlib
import uuid
from dataclasses import replace
from typing import Any

from flask import Blueprint, Flask, Response, abort, g
from flask_login import current_user
from markupsafe import Markup

from overture.platform.db import db
from overture.platform.logging import get_logger
from overture.tenants import branding

log = get_logger(__name__)
bp = Blueprint("brand_assets", __name__)
STYLE_HASHES = "brand_style_hashes"  # on g: what the CSP must allow in this response
YEAR = 365 * 24 * 3600
# When the brand cannot be read (the database is away during an error page), a page
# meant for a tenant must not fall back to the platform's name.
UNKNOWN = replace(branding.PLATFORM_DEFAULT, product_name="", sender_name="", white_label=True)


@bp.get(f"{branding.ASSET_PATH}/<uuid:tenant_id>/<name>")
def brand_asset(tenant_id: uuid.UUID, name: str) -> Response:
    """A brand image. Its name holds a hash of its bytes: cacheable for a year."""
    stored = branding.asset(tenant_id, name)
    if stored is None:
        abort(404)
    response = Response(stored.data, mimetype=stored.content_type)
    response.headers["Cache-Control"] = f"public, max-age={YEAR}, immutable"
    response.headers["Content-Disposition"] = "inline"
    return response


def brand_tenant_id() -> uuid.UUID | None:
    for key in ("brand_tenant_id", "host_tenant_id"):
        tenant_id = g.get(key)
        if tenant_id is not None:
            return tenant_id  # type: ignore[no-any-return]
    if current_user and current_user.is_authenticated:
        return branding.home_tenant_id(current_user._get_current_object())
    return None


def current_brand() -> branding.EffectiveBrand:
    """The brand of this request, read once for the tenant it shows (and again when a
    page switches tenant or changes the brand)."""
    tenant_id: uuid.UUID | None = None
    try:
        tenant_id = brand_tenant_id()
        cached = g.get("brand")
        if cached is not None and cached[0] == tenant_id:
            return cached[1]  # type: ignore[no-any-return]
        brand = branding.effective(tenant_id)
    except Exception:  # an error page must render whatever broke
        log.warning("brand.unreadable", exc_info=True)
        db.session.rollback()
        brand = UNKNOWN if tenant_id is not None or g.get("host_tenant_id") else \
            branding.PLATFORM_DEFAULT
    g.brand = (tenant_id, brand)
    return brand


def forget_brand() -> None:
    """After a change in this request: the next template reads it anew."""
    g.pop("brand", None)


def style_hash(css: str) -> str:
    digest = hashlib.sha256(css.encode()).digest()
    return "'sha256-" + base64.b64encode(digest).decode() + "'"


def page_title(*parts: str | None) -> str:
    """"<page> · <product name>", leaving out empty parts."""
    brand = current_brand()
    names = [p for p in parts if p] + ([brand.product_name] if brand.product_name else [])
    unique = [n for i, n in enumerate(names) if n not in names[:i]]
    return " · ".join(unique)


def _template_context() -> dict[str, Any]:
    brand = current_brand()
    css = brand.css
    hashes: set[str] = g.setdefault(STYLE_HASHES, set())
    hashes.add(style_hash(css))
    # Built from validated colours and a font of the fixed list only (brand_style).
    return {"brand": brand, "brand_css": Markup(css), "page_title": page_title}  # noqa: S704


def _forget() -> None:
    # Per request, even where an app context outlives one: never another request's brand.
    for key in ("brand", "brand_tenant_id", STYLE_HASHES):
        g.pop(key, None)


def install(app: Flask) -> None:
    app.register_blueprint(bp)
    app.before_request(_forget)
    app.context_processor(_template_context)
    branding.install_mail_brand()
