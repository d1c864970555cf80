"""Templates: snapshot an agency's workspace as version 1, re-snapshot as version n+1,
list and read them, and provision a new client workspace from one.

The caller acts in the agency. Reading or writing a workspace switches the scope to
that workspace for the block (`inside`), after checking the caller reaches it; the
template rows themselves always stay in the agency's tenant.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import defer

from overture.orchestration.templates import install, snapshot
from overture.orchestration.templates.catalogue import use_cases
from overture.orchestration.templates.models import Template, TemplateVersion, TemplateWorkspace
from overture.platform import audit
from overture.platform.db import db, get_or_404, in_tenant, save_named
from overture.platform.errors import NotFound, ValidationFailed
from overture.platform.pagination import Page, paginate
from overture.platform.validation import clean_name
from overture.tenants import lifecycle
from overture.tenants.access import Access, access_to
from overture.tenants.models import Tenant


@contextmanager
def inside(workspace: Tenant) -> Iterator[None]:
    """Act in `workspace` for a block. Pending agency rows are flushed first (each row
    is written under its own tenant's scope) and the workspace's before leaving."""
    db.session.flush()
    with in_tenant(workspace.id):
        yield
        db.session.flush()


def _agency(access: Access) -> Tenant:
    tenant = access.tenant
    if not tenant.is_agency:
        raise ValidationFailed.field("tenant", "templates belong to an agency: act in one")
    return tenant


def workspace_of(access: Access, workspace_id: Any, field: str = "workspace_id") -> Tenant:
    """One of the agency's client workspaces (anything else is a bad reference)."""
    try:
        return lifecycle.managed_tenant(access, workspace_id)
    except NotFound as exc:
        raise ValidationFailed.field(field, "not a client workspace of this agency") from exc


def _snapshot_of(access: Access, workspace: Tenant) -> dict[str, Any]:
    there = access_to(access.principal, workspace)  # a suspended workspace is refused
    with inside(workspace):
        return snapshot.take(there)


def create_template(access: Access, workspace_id: Any, name: str) -> Template:
    access.require("workspace.manage")
    agency = _agency(access)
    workspace = workspace_of(access, workspace_id)
    template = Template(tenant_id=agency.id, latest_version=0,
                        created_by_id=access.principal.user.id)
    save_named(template, clean_name(name), "a template", add=True)
    audit.record("template.created", target_type="template", target_id=template.id,
                 details={"name": template.name, "workspace_id": str(workspace.id)})
    add_version(access, template, workspace.id)
    return template


def create_from_use_case(access: Access, key: str, name: str | None = None) -> Template:
    """A new template of the agency whose version 1 is a ready-made use case (no source
    workspace: the catalogue is its source)."""
    access.require("workspace.manage")
    agency = _agency(access)
    use_case = use_cases().get(key)
    if use_case is None:
        raise ValidationFailed.field("use_case", f"no use case {key!r}")
    template = Template(tenant_id=agency.id, latest_version=1,
                        created_by_id=access.principal.user.id)
    save_named(template, clean_name(name or use_case.name), "a template", add=True)
    db.session.add(TemplateVersion(tenant_id=agency.id, template_id=template.id, number=1,
                                   snapshot=use_case.snapshot(), source_workspace_id=None,
                                   created_by_id=access.principal.user.id))
    db.session.flush()
    audit.record("template.created", target_type="template", target_id=template.id,
                 details={"name": template.name, "use_case": key})
    return template


def add_version(access: Access, template: Template, workspace_id: Any) -> TemplateVersion:
    """Snapshot the workspace as the template's next version."""
    access.require("workspace.manage")
    workspace = workspace_of(access, workspace_id)
    frozen = _snapshot_of(access, workspace)
    # Two snapshots at once would both take n+1: the template's row lock orders them.
    db.session.execute(select(Template.id).where(Template.id == template.id).with_for_update())
    db.session.refresh(template)
    version = TemplateVersion(tenant_id=template.tenant_id, template_id=template.id,
                              number=template.latest_version + 1, snapshot=frozen,
                              source_workspace_id=workspace.id,
                              created_by_id=access.principal.user.id)
    template.latest_version = version.number
    db.session.add(version)
    db.session.flush()
    audit.record("template.versioned", target_type="template", target_id=template.id,
                 details={"version": version.number, "workspace_id": str(workspace.id)})
    return version


def list_templates(access: Access, cursor: str | None, limit: int | None) -> Page[Template]:
    _agency(access)
    return paginate(select(Template), Template.id, cursor, limit)


def get_template(access: Access, template_id: Any) -> Template:
    _agency(access)
    return get_or_404(Template, template_id, "template")


def versions(template: Template) -> list[TemplateVersion]:
    return list(db.session.scalars(select(TemplateVersion).where(
        TemplateVersion.template_id == template.id).order_by(TemplateVersion.number)))


def versions_of(templates: list[Template]) -> dict[uuid.UUID, list[TemplateVersion]]:
    """Each template's versions, oldest first, in one statement for a list of them; their
    snapshots (large) are left unread until asked for."""
    found: dict[uuid.UUID, list[TemplateVersion]] = {t.id: [] for t in templates}
    if found:
        for version in db.session.scalars(
                select(TemplateVersion).options(defer(TemplateVersion.snapshot))
                .where(TemplateVersion.template_id.in_(found))
                .order_by(TemplateVersion.template_id, TemplateVersion.number)):
            found[version.template_id].append(version)
    return found


def workspace_counts(templates: list[Template]) -> dict[uuid.UUID, int]:
    """How many workspaces were provisioned from each template, in one statement."""
    if not templates:
        return {}
    counts = dict(db.session.execute(
        select(TemplateWorkspace.template_id, func.count())
        .where(TemplateWorkspace.template_id.in_([t.id for t in templates]))
        .group_by(TemplateWorkspace.template_id)).all())
    return {t.id: counts.get(t.id, 0) for t in templates}


def get_version(template: Template, number: Any) -> TemplateVersion:
    found = None
    if isinstance(number, int) and not isinstance(number, bool):
        found = db.session.scalars(select(TemplateVersion).where(
            TemplateVersion.template_id == template.id,
            TemplateVersion.number == number)).one_or_none()
    if found is None:
        raise ValidationFailed.field("version", f"the template has no version {number!r}")
    return found


def workspaces(template: Template) -> list[TemplateWorkspace]:
    """The workspaces provisioned from the template, and the version each is on."""
    return list(db.session.scalars(select(TemplateWorkspace).where(
        TemplateWorkspace.template_id == template.id).order_by(TemplateWorkspace.id)))


def provision(access: Access, template: Template, name: str,
              slug: str | None = None) -> tuple[Tenant, dict[str, Any]]:
    """A new client workspace with everything in the template's latest version, in the
    caller's transaction (nothing is left half made); and the placeholders to fill."""
    access.require("workspace.create")
    version = get_version(template, template.latest_version)
    workspace = lifecycle.create_workspace(access, name, slug)
    there = access_to(access.principal, workspace)
    details = {"template_id": str(template.id), "template": template.name,
               "version": version.number}
    with inside(workspace):
        placeholders = install.provision(there, version.snapshot)
        audit.record("template.provisioned", target_type="template", target_id=template.id,
                     details=details)
    db.session.add(TemplateWorkspace(tenant_id=template.tenant_id, template_id=template.id,
                                     workspace_id=workspace.id, version=version.number))
    audit.record("template.provisioned", target_type="tenant", target_id=workspace.id,
                 details=details)
    return workspace, placeholders


def link_of(template: Template, workspace_id: uuid.UUID) -> TemplateWorkspace | None:
    return db.session.scalars(select(TemplateWorkspace).where(
        TemplateWorkspace.template_id == template.id,
        TemplateWorkspace.workspace_id == workspace_id)).one_or_none()
