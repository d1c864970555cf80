"""The Brand page: a workspace's or agency's product name, images, colours and font,
with a live preview and the contrast of every pair the pages draw with the colours.
The same service as the API (tenants/branding.py), the same checks and messages."""

from __future__ import annotations

from typing import Any

from flask import abort, flash, redirect, request, url_for

from overture.platform.db import db
from overture.platform.errors import ValidationFailed
from overture.tenants import brand_images, brand_style, branding
from overture.web.brand_pages import forget_brand
from overture.web.console import bp
from overture.web.console.context import console_access, page, register_nav, render
from overture.web.console.forms import FormErrors, form_errors, status_of

register_nav("Brand", "console.brand", "tenant.read", "admin")

IMAGE_LABELS = {"logo": "Logo", "logo_dark": "Logo for dark backgrounds", "favicon": "Favicon"}


def _pairs(primary: str, accent: str) -> list[dict[str, Any]]:
    return [{"field": p.field, "description": p.description, "ratio": int(p.ratio * 100) / 100,
             "needed": p.needed, "ok": p.problem() is None, "roles": p.roles}
            for p in brand_style.pairs(primary, accent)]


def _page(errors: FormErrors | None = None, values: dict[str, Any] | None = None,
          image_errors: dict[str, str] | None = None) -> Any:
    access = console_access()
    tenant = access.require_tenant()
    view = branding.view(tenant)
    own = view["own"]
    shown = {**{k: own.get(k) or "" for k in branding.TEXT_FIELDS}, **(values or {})}
    inherited = branding.effective(tenant.parent.id).public() \
        if tenant.parent is not None and tenant.kind == "workspace" else None
    effective = view["effective"]
    preview_primary = brand_style.parse_colour(shown["primary"] or "") or effective["primary"]
    preview_accent = brand_style.parse_colour(shown["accent"] or "") or effective["accent"]
    errors = errors or FormErrors()
    failed = bool(errors) or bool(image_errors)
    return render("console/brand.html", 422 if failed else status_of(errors), title="Brand",
                  t=tenant, view=view, own=own, shown=shown, effective=effective,
                  inherited=inherited, errors=errors, image_errors=image_errors or {},
                  fallback=inherited or branding.PLATFORM_DEFAULT.public(),
                  can_edit=access.can("tenant.manage") and view["editable"],
                  can_manage=access.can("tenant.manage"), fonts=brand_style.FONTS,
                  images=IMAGE_LABELS, limits=brand_images.LIMITS,
                  max_mb=brand_images.MAX_BYTES // 1024 // 1024,
                  pairs=_pairs(preview_primary, preview_accent))


@bp.get("/brand")
@page("tenant.read")
def brand() -> Any:
    return _page()


@bp.post("/brand")
@page("tenant.manage")
def save_brand() -> Any:
    access = console_access()
    tenant = access.require_tenant()
    values = {name: request.form.get(name, "") for name in branding.TEXT_FIELDS}
    changes: dict[str, Any] = {name: value or None for name, value in values.items()}
    if tenant.kind == "agency":
        for name in branding.AGENCY_FIELDS:
            changes[name] = request.form.get(name) == "on"
    with form_errors(set(changes)) as errors:
        branding.update(access, changes)
        db.session.commit()
        forget_brand()
        flash("Brand saved.", "ok")
        return redirect(url_for("console.brand"))
    return _page(errors, values)


@bp.post("/brand/images/<kind>")
@page("tenant.manage")
def upload_brand_image(kind: str) -> Any:
    if kind not in IMAGE_LABELS:
        abort(404)
    upload = request.files.get("file")
    try:
        if upload is None or not upload.filename:
            raise ValidationFailed.field("file", "choose an image to upload first")
        branding.put_asset(console_access(), kind, brand_images.read_limited(upload.stream))
        db.session.commit()
    except ValidationFailed as err:
        db.session.rollback()
        return _page(image_errors={kind: _said(err)})
    forget_brand()
    flash(f"{IMAGE_LABELS[kind]} uploaded.", "ok")
    return redirect(url_for("console.brand") + "#images")


def _said(err: ValidationFailed) -> str:
    message = "; ".join(e["message"] for e in err.errors)
    return f"The file {message}." if message.startswith("is ") else \
        message[:1].upper() + message[1:] + "."


@bp.post("/brand/images/<kind>/remove")
@page("tenant.manage")
def remove_brand_image(kind: str) -> Any:
    if kind not in IMAGE_LABELS:
        abort(404)
    branding.remove_asset(console_access(), kind)
    db.session.commit()
    forget_brand()
    flash(f"{IMAGE_LABELS[kind]} removed.", "ok")
    return redirect(url_for("console.brand") + "#images")
