"""Single sign-on of the tenant this request acts in: its OpenID Connect provider.
The client secret is write-only: answers only say whether one is set."""

from __future__ import annotations

from typing import Any

from apiflask import Schema
from apiflask.fields import Boolean, DateTime, List, String
from apiflask.validators import Length, OneOf

from overture.platform.db import db
from overture.tenants import sso
from overture.tenants.roles import Role
from overture.web.api import api
from overture.web.api.schemas import Strict
from overture.web.auth import current_access, require

TAGS = ["Single sign-on"]
GRANTABLE = [r.value for r in Role if r != Role.OWNER]


class SsoProviderIn(Strict):
    issuer = String(required=True, validate=Length(1, 400),
                    metadata={"description": "https URL of the OpenID provider"})
    client_id = String(required=True, validate=Length(1, 200))
    client_secret = String(validate=Length(1, 2000), load_only=True,
                           metadata={"description": "write-only; omit to keep the stored one"})
    allowed_domains = List(String(validate=Length(1, 253)), load_default=list,
                           metadata={"description": "email domains that may join on first "
                                                    "sign-in"})
    default_role = String(load_default=Role.VIEWER.value, validate=OneOf(GRANTABLE))
    enabled = Boolean(load_default=True)


class SsoProviderOut(Schema):
    issuer = String()
    client_id = String()
    client_secret = String(allow_none=True, metadata={"description": "masked when set"})
    allowed_domains = List(String())
    default_role = String()
    enabled = Boolean()
    created_at = DateTime()


@api.get("/sso")
@require("tenant.manage")
@api.output(SsoProviderOut)
@api.doc(tags=TAGS, summary="The tenant's single sign-on provider (secret masked)")
def get_sso() -> dict[str, Any]:
    return sso.public_view(sso.read(current_access()))


@api.put("/sso")
@require("tenant.manage")
@api.input(SsoProviderIn, arg_name="body")
@api.output(SsoProviderOut)
@api.doc(tags=TAGS, summary="Configure the tenant's single sign-on provider")
def put_sso(body: dict[str, Any]) -> dict[str, Any]:
    provider = sso.configure(current_access(), body)
    db.session.commit()
    return sso.public_view(provider)


@api.delete("/sso")
@require("tenant.manage")
@api.output({}, status_code=204)
@api.doc(tags=TAGS, summary="Remove the tenant's single sign-on provider")
def delete_sso() -> tuple[str, int]:
    sso.remove(current_access())
    db.session.commit()
    return "", 204
