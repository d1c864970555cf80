"""Budgets: this month's model spend against the workspace's budget, each cap's use,
the soft thresholds, and (with `billing.manage`) the form that changes them. The same
services and checks as /api/v1/budgets; limits of one agent or workflow (set through
the API) are shown and kept as they are."""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, request, url_for

from overture.billing import budget_status, budgets
from overture.billing.meters import MODEL_COST, meter
from overture.platform.db import db, utcnow
from overture.web.console import bp
from overture.web.console.context import console_access, page, register_nav, render
from overture.web.console.forms import FormErrors, form_errors, status_of
from overture.web.console.home import count, money

READ, MANAGE = "billing.read", "billing.manage"
CAPS = budgets.CAPPED  # the workspace's caps the form edits, in this order

register_nav("Budgets", "console.budgets_page", READ, "billing")


def amount(status: budget_status.LimitStatus, value: Any) -> str:
    return money(value) if status.limit.meter == MODEL_COST else count(int(value))


def _form_values(settings: budgets.Settings) -> dict[str, str]:
    caps = {c.meter: c.limit for c in settings.caps if not (c.agent_id or c.workflow_id)}
    return {"budget": f"{settings.budget:.2f}" if settings.budget is not None else "",
            "thresholds": ", ".join(str(t) for t in settings.thresholds),
            **{f"cap_{m}": str(int(caps[m])) if m in caps else "" for m in CAPS}}


def _page(errors: FormErrors | None = None, values: dict[str, str] | None = None) -> Any:
    access = console_access()
    settings = budgets.read()
    now = utcnow()
    errors = errors or FormErrors()
    return render("console/budgets.html", status_of(errors), title="Budgets",
                  settings=settings, limits=budget_status.status(settings, now),
                  month=now.strftime("%B %Y"), can_manage=access.can(MANAGE),
                  form=values or _form_values(settings), errors=errors, caps=CAPS,
                  amount=amount, label=budgets.label, meter=meter)


@bp.get("/budgets")
@page(READ)
def budgets_page() -> Any:
    return _page()


@bp.post("/budgets")
@page(MANAGE)
def save_budgets() -> Any:
    values = {k: request.form.get(k, "").strip() for k in ("budget", "thresholds",
                                                          *(f"cap_{m}" for m in CAPS))}
    asked = [m for m in CAPS if values[f"cap_{m}"]]
    kept = [c.to_json() for c in budgets.read().caps if c.agent_id or c.workflow_id]
    body = {"budget": values["budget"] or None, "thresholds": values["thresholds"],
            "caps": [{"meter": m, "limit": values[f"cap_{m}"]} for m in asked] + kept}
    with form_errors() as errors:
        budgets.replace(budgets.parse(body))
        db.session.commit()
        flash("Budgets saved: they apply from the next call.", "ok")
        return redirect(url_for("console.budgets_page"))
    return _page(_by_field(errors, asked), values)


def _by_field(errors: FormErrors, asked: list[str]) -> FormErrors:
    """The service names a cap by its place in the list; the form by its meter."""
    shown = FormErrors()
    for key, message in errors.items():
        if key.startswith("caps."):
            index = int(key.split(".")[1])
            key = f"cap_{asked[index]}" if index < len(asked) else "_form"
        shown[key] = message
    return shown


__all__ = ["budgets_page", "save_budgets"]
