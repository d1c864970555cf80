"""The brand of the tenant acted in: read it, change it, upload its images.

An agency sets a client workspace's brand by naming the workspace in
X-Overture-Tenant, as for every other tenant-scoped call.
"""

from __future__ import annotations

from typing import Any

from flask import abort

from overture.platform.db import db
from overture.tenants import brand_images, branding
from overture.web.api import api
from overture.web.api.brand_schemas import AssetUpload, BrandOut, BrandUpdate
from overture.web.auth import current_access, require

TAGS = ["Brand"]


def _kind(kind: str) -> str:
    if kind not in brand_images.KINDS:
        abort(404)
    return kind


@api.get("/brand")
@require("tenant.read")
@api.output(BrandOut)
@api.doc(tags=TAGS, summary="The brand of the tenant this request acts in: its own fields "
                            "and the effective brand its pages show")
def get_brand() -> dict[str, Any]:
    return branding.view(current_access().require_tenant())


@api.patch("/brand")
@require("tenant.manage")
@api.input(BrandUpdate, arg_name="body")
@api.output(BrandOut)
@api.doc(tags=TAGS, summary="Change brand fields (null clears one); a wrong field changes "
                            "nothing")
def update_brand(body: dict[str, Any]) -> dict[str, Any]:
    tenant = branding.update(current_access(), body)
    db.session.commit()
    return branding.view(tenant)


@api.put("/brand/assets/<kind>")
@require("tenant.manage")
@api.input(AssetUpload, location="files", arg_name="upload")
@api.output(BrandOut)
@api.doc(tags=TAGS, summary="Upload the logo, the logo for dark backgrounds (`logo_dark`) or "
                            "the favicon", description="`kind` is `logo`, `logo_dark` or "
                            "`favicon`.")
def upload_brand_asset(kind: str, upload: dict[str, Any]) -> dict[str, Any]:
    data = brand_images.read_limited(upload["file"].stream)
    tenant = branding.put_asset(current_access(), _kind(kind), data)
    db.session.commit()
    return branding.view(tenant)


@api.delete("/brand/assets/<kind>")
@require("tenant.manage")
@api.output(BrandOut)
@api.doc(tags=TAGS, summary="Remove an uploaded image: the inherited one shows again")
def delete_brand_asset(kind: str) -> dict[str, Any]:
    tenant = branding.remove_asset(current_access(), _kind(kind))
    db.session.commit()
    return branding.view(tenant)
