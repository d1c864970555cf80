"""Plans: an agency's retail plans for its clients, the platform's wholesale plans for
agencies. List them, create and edit one (its price book as a table), delete one no
tenant is billed at, and choose the plan each client (or agency) is billed at. The
same services as /api/v1/plans and /api/v1/billing/accounts, with the same
permissions (`billing.read` to see, `billing.clients` to change)."""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, request, url_for
from werkzeug.wrappers import Response

from overture.billing import accounts, pricebook
from overture.billing import plans as plan_service
from overture.platform.db import db
from overture.platform.errors import Conflict, ValidationFailed
from overture.tenants.models import TenantKind
from overture.web.console import bp, plan_form
from overture.web.console.billing import amount
from overture.web.console.context import console_access, page, render
from overture.web.console.forms import FormErrors, status_of

READ, MANAGE = "billing.read", "billing.clients"  # plans: agency owners and admins


def defines_plans() -> bool:
    return console_access().tenant.kind in (TenantKind.PLATFORM, TenantKind.AGENCY)


@bp.get("/plans", endpoint="plans")
@page(READ)
def plans_page() -> Any:
    return _list()


def _list() -> Any:
    access = console_access()
    if not defines_plans():
        return render("console/plans.html", title="Plans", defines=False,
                      account=accounts.account_of(access.tenant.id))
    owner = access.tenant
    found = plan_service.list_plans()
    billed = plan_service.billed_tenants(owner)
    current = plan_service.accounts_of([t.id for t in billed])
    counts = plan_service.count_by_plan(current, owner.id)
    return render("console/plans.html", title="Plans", defines=True,
                  plans=found, counts=counts, billed=billed,
                  assigned={t: v[0] for t, v in current.items() if v[1] == owner.id},
                  wholesale=access.is_platform, can_manage=access.can(MANAGE),
                  summary=summary, amount=amount)


def summary(plan: Any) -> str:
    """How a plan charges model usage, in a few words."""
    models = (plan.price_book or {}).get("models", {})
    mode, markup = models.get("mode", "cost_plus"), models.get("markup_percent", "0")
    if mode == "none":
        return "Models not charged"
    if mode == "rate_card":
        return f"Rate card, {len(models.get('rates', {}))} models (others at cost + {markup} %)"
    return f"Model cost + {markup} %"


@bp.post("/plans/assign")
@page(MANAGE)
def assign_plan() -> Any:
    tenant_id, plan_id = request.form.get("tenant_id", ""), request.form.get("plan_id", "")
    try:
        account = accounts.assign(console_access(), tenant_id, plan_id or None)
    except Conflict as err:
        db.session.rollback()
        flash(err.detail or "Try again.", "error")
        return redirect(url_for("console.plans"))
    db.session.commit()
    flash(f"Billed at {account.terms.name} from now on." if account
          else "Billed at no plan from now on.", "ok")
    return redirect(url_for("console.plans"))


@bp.get("/plans/new")
@page(MANAGE)
def new_plan() -> Any:
    return _form(plan_form.blank(), None)


@bp.get("/plans/<plan_id>")
@page(READ)
def edit_plan(plan_id: str) -> Any:
    plan_service.require_plan_owner(console_access())
    return _form(plan_form.of_plan(plan_service.get_plan(plan_id)), plan_id)


@bp.post("/plans/new")
@page(MANAGE)
def create_plan() -> Any:
    return _save(None)


@bp.post("/plans/<plan_id>")
@page(MANAGE)
def update_plan(plan_id: str) -> Any:
    return _save(plan_id)


def _save(plan_id: str | None) -> Any:
    access = console_access()
    form = plan_form.read(request.form)
    errors = FormErrors()
    try:
        fields = plan_form.fields(form)
        if plan_id is None:
            plan = plan_service.create_plan(access, fields)
        else:
            plan = plan_service.update_plan(access, plan_id, fields)
    except ValidationFailed as err:
        db.session.rollback()
        for e in err.errors:
            message = e["message"]
            errors[plan_form.cell_of(e["field"], form)] = message[:1].upper() + message[1:]
        return _form(form, plan_id, errors)
    except Conflict as err:
        db.session.rollback()
        errors["name"] = err.detail or "taken"
        return _form(form, plan_id, errors)
    db.session.commit()
    flash(f"Plan {plan.name} saved (version {plan.version}).", "ok")
    return redirect(url_for("console.plans"))


@bp.post("/plans/<plan_id>/delete")
@page(MANAGE)
def delete_plan(plan_id: str) -> Response:
    try:
        plan_service.delete_plan(console_access(), plan_id)
    except Conflict as err:
        db.session.rollback()
        flash(err.detail or "This plan is in use.", "error")
        return redirect(url_for("console.edit_plan", plan_id=plan_id))
    db.session.commit()
    flash("Plan deleted.", "ok")
    return redirect(url_for("console.plans"))


def _form(form: dict[str, Any], plan_id: str | None, errors: FormErrors | None = None) -> Any:
    access = console_access()
    plan_service.require_plan_owner(access)
    errors = errors or FormErrors()
    return render("console/plan_form.html", status_of(errors),
                  title="New plan" if plan_id is None else f"Plan {form['name']}",
                  form=form, plan_id=plan_id, errors=errors, priced=plan_form.PRICED,
                  key=plan_form.meter_key, currencies=sorted(pricebook.CURRENCIES),
                  modes=MODES, tier_hint=plan_form.TIER_HINT,
                  can_manage=access.can(MANAGE), wholesale=access.is_platform)


MODES = (("cost_plus", "Cost plus a markup"), ("rate_card", "Rate card per model"),
         ("none", "Not charged"))
