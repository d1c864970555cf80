"""Plans, billing accounts, draft invoices and an agency's rebilling view.

The platform defines wholesale plans and assigns them to agencies; an agency defines
retail plans and assigns them to its client workspaces. A tenant reads its plan and
its draft invoice for any month (priced now from the roll-ups); an agency reads, per
client, cost, price and margin. Reads need `billing.read`; defining and assigning plans
`billing.clients` (an agency's owners and admins, the platform's admins);
every change is audited.
"""

from __future__ import annotations

from typing import Any

from overture.billing import accounts, invoices, periods, plans, pricebook, pricing
from overture.billing.pricebook import plain
from overture.platform.db import db, utcnow
from overture.platform.errors import ValidationFailed
from overture.web.api import api
from overture.web.api.billing_schemas import (
    AccountIn,
    BillingPlanOut,
    DraftOut,
    MonthQuery,
    PlanIn,
    PlanOut,
    PlanPatch,
    PlansOut,
    RebillingOut,
)
from overture.web.auth import current_access, require

TAGS = ["Plans and invoices"]
READ, MANAGE = "billing.read", "billing.clients"  # plans: agency owners and admins


def plan_view(plan: plans.Plan, in_use: int = 0) -> dict[str, Any]:
    return {"id": plan.id, "name": plan.name, "currency": plan.currency,
            "base_fee": plain(plan.base_fee), "price_book": plan.price_book,
            "version": plan.version, "in_use": in_use,
            "webhook_rate_ceiling": plan.webhook_rate_ceiling, "created_at": plan.created_at,
            "updated_at": plan.updated_at}


def terms_view(terms: accounts.Terms) -> dict[str, Any]:
    return {"id": terms.plan_id, "name": terms.name, "currency": terms.currency,
            "base_fee": plain(terms.base_fee), "version": terms.version,
            "price_book": pricebook.dump(terms.book)}


def account_view(account: accounts.Account | None) -> dict[str, Any] | None:
    if account is None:
        return None
    return {"tenant_id": account.tenant_id, "billed_by_id": account.billed_by_id,
            "since": account.since, "plan": terms_view(account.terms)}


def money(value: Any) -> str | None:
    return None if value is None else f"{value:f}"


def line_view(line: pricing.InvoiceLine) -> dict[str, Any]:
    return {"meter": line.meter, "dimension": line.dimension,
            "description": line.description, "quantity": plain(line.quantity),
            "included": plain(line.included), "billable": plain(line.billable),
            "unit_price": None if line.unit_price is None else plain(line.unit_price),
            "markup_percent": None if line.markup_percent is None
            else plain(line.markup_percent),
            "tiers": [{"since": plain(t.since), "up_to": None if t.up_to is None
                       else plain(t.up_to), "quantity": plain(t.quantity),
                       "unit_price": plain(t.unit_price), "amount": plain(t.amount)}
                      for t in line.tiers],
            "amount": money(line.amount)}


def month_of(query: dict[str, Any]) -> periods.Period:
    """The month asked for, whole (default: this one)."""
    if not query.get("month"):
        return periods.month_of(utcnow())
    return periods.parse(month=query["month"])


def _owner_kind() -> str:
    """`wholesale` or `retail`: which plans the caller's tenant defines (Forbidden for a
    workspace, which defines none)."""
    access = current_access()
    plans.require_plan_owner(access)
    return "wholesale" if access.is_platform else "retail"


@api.get("/plans")
@require(READ)
@api.output(PlansOut)
@api.doc(tags=TAGS, summary="The plans this tenant defines: the platform's wholesale plans "
                            "for agencies, or an agency's retail plans for its clients")
def list_plans() -> dict[str, Any]:
    kind = _owner_kind()
    counts = plans.usage_counts(current_access().tenant)
    return {"kind": kind, "items": [plan_view(p, counts.get(p.id, 0))
                                    for p in plans.list_plans()]}


@api.post("/plans")
@require(MANAGE)
@api.input(PlanIn, arg_name="body")
@api.output(PlanOut, status_code=201)
@api.doc(tags=TAGS, summary="Define a plan: currency, monthly base fee and price book",
         description="A bad price book is a 422 naming the field, e.g. "
                     "`price_book.meters.steps.tiers[1].up_to`.")
def create_plan(body: dict[str, Any]) -> dict[str, Any]:
    plan = plans.create_plan(current_access(), body)
    db.session.commit()
    return plan_view(plan)


@api.get("/plans/<plan_id>")
@require(READ)
@api.output(PlanOut)
@api.doc(tags=TAGS, summary="One of this tenant's plans")
def get_plan(plan_id: str) -> dict[str, Any]:
    plans.require_plan_owner(current_access())
    plan = plans.get_plan(plan_id)
    return plan_view(plan, plans.usage_counts(current_access().tenant).get(plan.id, 0))


@api.patch("/plans/<plan_id>")
@require(MANAGE)
@api.input(PlanPatch, arg_name="body")
@api.output(PlanOut)
@api.doc(tags=TAGS, summary="Change a plan (its version goes up; audited before and after)",
         description="Draft invoices are priced with the plan as it is when they are read.")
def update_plan(plan_id: str, body: dict[str, Any]) -> dict[str, Any]:
    plan = plans.update_plan(current_access(), plan_id, body)
    db.session.commit()
    return plan_view(plan, plans.usage_counts(current_access().tenant).get(plan.id, 0))


@api.delete("/plans/<plan_id>")
@require(MANAGE)
@api.output({}, status_code=204)
@api.doc(tags=TAGS, summary="Delete a plan (409 while a tenant is billed at it)")
def delete_plan(plan_id: str) -> tuple[str, int]:
    plans.delete_plan(current_access(), plan_id)
    db.session.commit()
    return "", 204


@api.put("/billing/accounts/<tenant_id>")
@require(MANAGE)
@api.input(AccountIn, arg_name="body")
@api.output(BillingPlanOut)
@api.doc(tags=TAGS, summary="Bill a client workspace (agency) or an agency (platform) at "
                            "one of the caller's plans; plan_id null: at no plan",
         description="Audited in the caller's and the billed tenant's logs.")
def assign_plan(tenant_id: str, body: dict[str, Any]) -> dict[str, Any]:
    account = accounts.assign(current_access(), tenant_id, body["plan_id"])
    db.session.commit()
    return {"account": account_view(account)}


@api.get("/billing/plan")
@require(READ)
@api.output(BillingPlanOut)
@api.doc(tags=TAGS, summary="The plan this tenant is billed at (account: null when none)")
def billing_plan() -> dict[str, Any]:
    return {"account": account_view(accounts.account_of(current_access().tenant.id))}


@api.get("/billing/draft-invoice")
@require(READ)
@api.input(MonthQuery, location="query", arg_name="query")
@api.output(DraftOut)
@api.doc(tags=TAGS, summary="This tenant's invoice for a month (default: this one), priced "
                            "now from its usage and its plan (404: no plan)",
         description="An agency's invoice covers its clients' usage too. Each line is "
                     "rounded once, half up, to the currency's minor unit; the total is "
                     "their sum.")
def draft_invoice(query: dict[str, Any]) -> dict[str, Any]:
    period = month_of(query)
    draft = invoices.draft_invoice(current_access().tenant, period)
    return {"tenant": draft.tenant, "since": period.since, "until": period.until,
            "plan": terms_view(draft.account.terms), "currency": draft.invoice.currency,
            "lines": [line_view(li) for li in draft.invoice.lines],
            "total": money(draft.invoice.total)}


@api.get("/billing/clients")
@require(READ)
@api.input(MonthQuery, location="query", arg_name="query")
@api.output(RebillingOut)
@api.doc(tags=TAGS, summary="An agency's clients for a month: usage, cost (at its wholesale "
                            "plan), price (at the client's plan) and margin",
         description="Cost is the client's usage at the wholesale rates, without the "
                     "wholesale plan's base fee and included quantities (those are the "
                     "agency's, once a month). Price is the client's draft invoice total. "
                     "Every figure is a sum of rounded invoice lines; the totals sum the "
                     "per-client figures, so they add up to the cent.")
def client_bills(query: dict[str, Any]) -> dict[str, Any]:
    access = current_access()
    if not access.tenant.is_agency:
        raise ValidationFailed.field("X-Overture-Tenant", "name an agency: this lists its "
                                                          "client workspaces")
    period = month_of(query)
    view = invoices.rebilling(access, period)
    return {"since": period.since, "until": period.until, "currency": view.currency,
            "wholesale_plan": view.wholesale.name if view.wholesale else None,
            "items": [{"tenant": b.tenant, "usage": {m: plain(q) for m, q in
                                                     sorted(b.usage.items())},
                       "plan": b.plan.name if b.plan else None,
                       "currency": b.plan.currency if b.plan else None,
                       "cost": money(b.cost), "price": money(b.price),
                       "margin": money(b.margin)} for b in view.clients],
            "total": {"cost": money(view.cost), "price": money(view.price),
                      "margin": money(view.margin)}}
