"""Budgets and caps: the workspace's hard monthly limits, their soft thresholds, and
where it stands against them this month (`billing.read`); changing them needs
`billing.manage`. The billing standing (past due or not) is read with `billing.read`."""

from __future__ import annotations

from typing import Any

from apiflask import Schema
from apiflask.fields import Boolean, DateTime, Integer, List, Nested, Raw, String

from overture.billing import budget_status, budgets, standing
from overture.platform.db import current_tenant_id, db, utcnow
from overture.web.api import api
from overture.web.api.schemas import Strict
from overture.web.auth import require

TAGS = ["Budgets"]


class CapIn(Strict):
    meter = String(required=True, metadata={"description": ", ".join(budgets.LIMITED)})
    limit = Raw(required=True, metadata={"description": "a whole number (USD with cents "
                                                        "for llm_cost)"})
    agent_id = String(load_default=None, allow_none=True)
    workflow_id = String(load_default=None, allow_none=True)


class BudgetsIn(Strict):
    budget = Raw(load_default=None, allow_none=True, metadata={
        "description": "the monthly budget on model spend (`llm_cost`), USD, e.g. \"250.00\"; "
                       "null: none"})
    thresholds = Raw(load_default=list(budgets.DEFAULT_THRESHOLDS), metadata={
        "description": "percentages that alert once a month each (default 50, 80, 100)"})
    caps = List(Nested(CapIn), load_default=list)


class LimitOut(Schema):
    meter = String()
    label = String()
    limit = String()
    agent_id = String(allow_none=True)
    workflow_id = String(allow_none=True)
    used = String(metadata={"description": "this calendar month (UTC)"})
    held = String(metadata={"description": "held by calls running now"})
    percent = Integer()
    reached = List(Integer(), metadata={"description": "soft thresholds reached"})
    exhausted = Boolean()


class BudgetsOut(Schema):
    month = String()
    currency = String()
    budget = String(allow_none=True)
    thresholds = List(Integer())
    caps = List(Raw())
    limits = List(Nested(LimitOut))


class StandingOut(Schema):
    status = String(metadata={"description": "`good` or `past_due`"})
    restricted = Boolean(metadata={"description": "new runs are refused (402 past-due)"})
    past_due_since = DateTime(allow_none=True)
    restricted_from = DateTime(allow_none=True, metadata={
        "description": "when the grace period ends (or ended)"})
    invoice_id = String(allow_none=True)


def view() -> dict[str, Any]:
    now = utcnow()
    settings = budgets.read()
    return {**settings.to_json(), "month": now.strftime("%Y-%m"),
            "limits": [s.to_json() for s in budget_status.status(settings, now)]}


@api.get("/budgets")
@require("billing.read")
@api.output(BudgetsOut)
@api.doc(tags=TAGS, summary="The workspace's budget and caps, and this month's use of each")
def get_budgets() -> dict[str, Any]:
    return view()


@api.put("/budgets")
@require("billing.manage")
@api.input(BudgetsIn, arg_name="body")
@api.output(BudgetsOut)
@api.doc(tags=TAGS, summary="Replace the workspace's budget, caps and thresholds",
         description="At a hard limit new runs are refused with 402 (`budget-exceeded`, "
                     "`quota-exceeded`) and a running step that would pass it fails with "
                     "`budget_exceeded`. Audited.")
def put_budgets(body: dict[str, Any]) -> dict[str, Any]:
    budgets.replace(budgets.parse(body))
    db.session.commit()
    return view()


@api.get("/billing/standing")
@require("billing.read")
@api.output(StandingOut)
@api.doc(tags=TAGS, summary="Whether the tenant is past due, and when runs stop (or "
                            "stopped) for it")
def get_standing() -> dict[str, Any]:
    tenant_id = current_tenant_id()
    assert tenant_id is not None  # @require resolved it
    shown = standing.standing(tenant_id, utcnow())
    return {"status": shown.status, "restricted": shown.restricted,
            "past_due_since": shown.past_due_since, "restricted_from": shown.restricted_from,
            "invoice_id": shown.invoice_id}
