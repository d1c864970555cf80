"""Tenants: the one in scope, and the client workspaces an agency administers."""

from __future__ import annotations

from typing import Any

from overture.platform.db import db
from overture.tenants import lifecycle, mfa
from overture.tenants.models import Tenant, TenantKind
from overture.tenants.users import create_user, find_user_by_email, normalize_email
from overture.web.api import api
from overture.web.api.schemas import (
    OwnTenantUpdate,
    TenantCreate,
    TenantOut,
    TenantPage,
    TenantQuery,
    TenantUpdate,
)
from overture.web.auth import current_access, require

TAGS = ["Tenants"]


@api.get("/tenant")
@require("tenant.read")
@api.output(TenantOut)
@api.doc(tags=TAGS, summary="The tenant this request acts in")
def get_current_tenant() -> Tenant:
    return current_access().tenant


@api.patch("/tenant")
@require("tenant.manage")
@api.input(OwnTenantUpdate, arg_name="body")
@api.output(TenantOut)
@api.doc(tags=TAGS, summary="Rename the tenant this request acts in, or change its settings")
def rename_current_tenant(body: dict[str, Any]) -> Tenant:
    tenant = current_access().require_tenant()
    if "name" in body:
        tenant = lifecycle.rename_own(current_access(), body["name"])
    if "mfa_required" in body:
        tenant = mfa.set_required(current_access(), body["mfa_required"])
    db.session.commit()
    return tenant


@api.get("/tenants")
@require("workspace.manage")
@api.input(TenantQuery, location="query", arg_name="query")
@api.output(TenantPage)
@api.doc(tags=TAGS, summary="Client workspaces of this agency (every tenant for platform admins)")
def list_tenants(query: dict[str, Any]) -> dict[str, Any]:
    page = lifecycle.managed_tenants(current_access(), query["cursor"], query["limit"],
                                     query["status"])
    return page.body()


@api.post("/tenants")
@require("workspace.create")
@api.input(TenantCreate, arg_name="body")
@api.output(TenantOut, status_code=201)
@api.doc(tags=TAGS, summary="Create a client workspace (or, for platform admins, an agency)")
def create_tenant(body: dict[str, Any]) -> Tenant:
    access = current_access()
    if body["kind"] == TenantKind.AGENCY:
        owner = None
        if body["owner_email"]:
            email = normalize_email(body["owner_email"], "owner_email")
            owner = find_user_by_email(email) or create_user(email)
        tenant = lifecycle.create_agency(access, body["name"], body["slug"], owner)
    else:
        tenant = lifecycle.create_workspace(access, body["name"], body["slug"])
    db.session.commit()
    return tenant


@api.get("/tenants/<tenant_id>")
@require("workspace.manage")
@api.output(TenantOut)
@api.doc(tags=TAGS, summary="One client workspace")
def get_tenant(tenant_id: str) -> Tenant:
    return lifecycle.managed_tenant(current_access(), tenant_id)


@api.patch("/tenants/<tenant_id>")
@require("workspace.manage")
@api.input(TenantUpdate, arg_name="body")
@api.output(TenantOut)
@api.doc(tags=TAGS, summary="Rename a client workspace")
def rename_tenant(tenant_id: str, body: dict[str, Any]) -> Tenant:
    access = current_access()
    tenant = lifecycle.rename(access, lifecycle.managed_tenant(access, tenant_id), body["name"])
    db.session.commit()
    return tenant


@api.post("/tenants/<tenant_id>/suspend")
@require("workspace.manage")
@api.output(TenantOut)
@api.doc(tags=TAGS, summary="Suspend a client workspace: its users and keys are refused")
def suspend_tenant(tenant_id: str) -> Tenant:
    access = current_access()
    tenant = lifecycle.suspend(access, lifecycle.managed_tenant(access, tenant_id))
    db.session.commit()
    return tenant


@api.post("/tenants/<tenant_id>/resume")
@require("workspace.manage")
@api.output(TenantOut)
@api.doc(tags=TAGS, summary="Resume a suspended client workspace")
def resume_tenant(tenant_id: str) -> Tenant:
    access = current_access()
    tenant = lifecycle.resume(access, lifecycle.managed_tenant(access, tenant_id))
    db.session.commit()
    return tenant


@api.delete("/tenants/<tenant_id>")
@require("workspace.manage")
@api.output({}, status_code=204)
@api.doc(tags=TAGS, summary="Delete a client workspace (nobody can enter it again)")
def delete_tenant(tenant_id: str) -> tuple[str, int]:
    access = current_access()
    lifecycle.delete(access, lifecycle.managed_tenant(access, tenant_id))
    db.session.commit()
    return "", 204
