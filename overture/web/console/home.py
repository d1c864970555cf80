"""Home: an agency sees every client workspace at a glance; anyone else their
workspace's recent runs and open approvals. And the workspace switcher."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from flask import redirect, request
from flask_login import login_required
from werkzeug.wrappers import Response

from overture.orchestration import approvals, runs, workflows
from overture.orchestration.overview import workspace_overview
from overture.platform.db import utcnow
from overture.platform.errors import ValidationFailed
from overture.tenants import access as tenant_access
from overture.tenants import lifecycle
from overture.tenants.access import Access
from overture.tenants.models import Tenant
from overture.web.console import bp
from overture.web.console.context import (
    choose,
    console_access,
    console_principal,
    page,
    render,
)
from overture.web.signin_flow import safe_next

RECENT = 10
# Sort keys of the agency table: each reads one row (a workspace and its overview).
SORTS: dict[str, Any] = {
    "name": lambda r: r["tenant"].name.lower(),
    "status": lambda r: r["tenant"].status,
    "succeeded": lambda r: r["o"].runs_succeeded_7d,
    "failed": lambda r: r["o"].runs_failed_7d,
    "waiting": lambda r: r["o"].runs_waiting,
    "approvals": lambda r: r["o"].open_approvals,
    "tokens": lambda r: r["o"].tokens_month,
    "cost": lambda r: r["o"].cost_month,
    "failure": lambda r: r["o"].last_failure_at or datetime.min.replace(tzinfo=None),
}
STATUSES = ("active", "suspended")


@bp.get("/")
@page()
def home() -> Any:
    access = console_access()
    if access.is_platform or (access.tenant.is_agency and access.can("workspace.manage")):
        return _agency_home(access)
    return _workspace_home(access)


def _agency_home(access: Access) -> Any:
    q = request.args.get("q", "").strip()
    status = request.args.get("status", "")
    sort = request.args.get("sort", "name")
    sort = sort if sort in SORTS else "name"
    descending = request.args.get("dir", "asc") == "desc"
    tenants = lifecycle.managed_tenants(access, None, 200,
                                        status if status in STATUSES else None).items
    overview = workspace_overview([t.id for t in tenants], utcnow())
    rows = [{"tenant": t, "o": overview[t.id]} for t in tenants]
    total = _totals(rows)
    if q:
        needle = q.lower()
        rows = [r for r in rows if needle in r["tenant"].name.lower()
                or needle in r["tenant"].slug.lower()]
    rows.sort(key=_safe_key(SORTS[sort]), reverse=descending)
    return render("console/home_agency.html", title="Home", rows=rows, total=total, q=q,
                  status_filter=status, sort=sort, descending=descending,
                  can_manage=access.can("workspace.manage"),
                  can_create=access.can("workspace.create") and not access.is_platform)


def _safe_key(key: Any) -> Any:
    def wrapped(row: dict[str, Any]) -> Any:
        value = key(row)
        if isinstance(value, datetime) and value.tzinfo is not None:
            return value.replace(tzinfo=None)
        return value
    return wrapped


def _totals(rows: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "workspaces": len(rows),
        "suspended": sum(1 for r in rows if r["tenant"].status == "suspended"),
        "succeeded": sum(r["o"].runs_succeeded_7d for r in rows),
        "failed": sum(r["o"].runs_failed_7d for r in rows),
        "approvals": sum(r["o"].open_approvals for r in rows),
        "cost": sum((r["o"].cost_month for r in rows), Decimal(0)),
        "tokens": sum(r["o"].tokens_month for r in rows),
    }


def _workspace_home(access: Access) -> Any:
    tenant: Tenant = access.tenant
    context: dict[str, Any] = {"overview": None, "recent": [], "pending": [], "names": {}}
    if access.can("run.read"):
        context["overview"] = workspace_overview([tenant.id], utcnow())[tenant.id]
        context["recent"] = runs.recent_runs(RECENT)
        context["pending"] = approvals.list_approvals(None, RECENT).items
    if access.can("workflow.read"):
        context["names"] = {w.id: w.name for w in workflows.list_workflows(None, 200).items}
    return render("console/home_workspace.html", title="Home", **context)


@bp.post("/switch")
@login_required
def switch() -> Response:
    """Act in another workspace from now on (it must be one the person may enter)."""
    ref = request.form.get("tenant", "")
    try:
        uuid.UUID(ref)
    except ValueError as exc:
        raise ValidationFailed.field("tenant", "choose a workspace") from exc
    access = tenant_access.enter(console_principal(), ref)  # refuses what they cannot reach
    choose(access.tenant)
    return redirect(safe_next(request.form.get("next")))


@bp.app_template_filter("ago")
def ago(moment: datetime | None) -> str:
    if moment is None:
        return "—"
    now = utcnow()
    if moment.tzinfo is None:
        now = now.replace(tzinfo=None)
    seconds = int((now - moment).total_seconds())
    if seconds < 0:
        return "in " + _span(-seconds + 59)  # a deadline is not sooner than it is
    return "just now" if seconds < 60 else _span(seconds) + " ago"


def _span(seconds: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


@bp.app_template_filter("money")
def money(value: Decimal | float | int | None) -> str:
    amount = Decimal(value or 0)
    return f"${amount:,.2f}" if amount >= Decimal("0.01") or amount == 0 else f"${amount:.4f}"


@bp.app_template_filter("count")
def count(value: int | None) -> str:
    n = int(value or 0)
    if n >= 1_000_000:
        return f"{n / 1_000_000:.1f}M"
    if n >= 10_000:
        return f"{n / 1000:.0f}k"
    return f"{n:,}"

