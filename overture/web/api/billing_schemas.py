"""Request and response shapes of plans, billing accounts, draft invoices and an
agency's rebilling view. Money and quantities are exact decimal strings."""

from __future__ import annotations

from apiflask import Schema
from apiflask.fields import UUID, DateTime, Dict, Integer, List, Nested, Raw, String

from overture.billing.pricebook import CURRENCIES
from overture.web.api.schemas import Strict, TenantOut

DECIMAL = "a decimal string (quantities and money are exact)"
BOOK = ("the price book: `meters` (per meter name: `unit_price`, `included`, or graduated "
        "`tiers` [{`up_to`, `unit_price`}, ..., {`up_to`: null, ...}]) and `models` "
        "(`mode`: `cost_plus` with `markup_percent`, `rate_card` with `rates` per "
        "`provider:model` {`input_per_mtok`, `output_per_mtok`} and `markup_percent` for "
        "models not on the card, or `none`); amounts as decimal strings or numbers")



CEILING = ("the most calls a minute a workflow's webhook of a tenant billed at this plan "
           "may take; null: the installation's ceiling only. A limit, not a price: changing "
           "it makes no new version")


class PlanIn(Strict):
    name = String(required=True, metadata={"example": "Growth"})
    currency = String(load_default="USD", metadata={
        "description": "ISO 4217 code, one of " + ", ".join(sorted(CURRENCIES))})
    base_fee = Raw(load_default="0", metadata={
        "description": "the monthly base fee, in the plan's currency", "example": "49.00"})
    price_book = Dict(load_default=dict, metadata={"description": BOOK})
    webhook_rate_ceiling = Raw(load_default=None, allow_none=True,
                               metadata={"description": CEILING, "example": 6000})


class PlanPatch(Strict):
    name = String()
    currency = String()
    base_fee = Raw(metadata={"description": "the monthly base fee"})
    price_book = Dict(metadata={"description": BOOK + " (replaces the whole book)"})
    webhook_rate_ceiling = Raw(allow_none=True, metadata={"description": CEILING})


class PlanOut(Schema):
    id = UUID()
    name = String()
    currency = String()
    base_fee = String(metadata={"description": DECIMAL})
    price_book = Dict()
    version = Integer(metadata={"description": "raised by each edit (each one audited)"})
    in_use = Integer(metadata={"description": "tenants billed at this plan"})
    webhook_rate_ceiling = Integer(allow_none=True, metadata={"description": CEILING})
    created_at = DateTime()
    updated_at = DateTime()


class PlansOut(Schema):
    items = List(Nested(PlanOut))
    kind = String(metadata={"description": "`wholesale` (the platform's, for agencies) or "
                                           "`retail` (an agency's, for its clients)"})


class AccountIn(Strict):
    plan_id = UUID(required=True, allow_none=True, metadata={
        "description": "one of the caller's plans; null: bill the tenant at no plan"})


class AccountOut(Schema):
    tenant_id = UUID()
    billed_by_id = UUID()
    since = DateTime()
    plan = Nested(PlanOut)


class BillingPlanOut(Schema):
    account = Nested(AccountOut, allow_none=True, metadata={
        "description": "null: no plan is assigned to this tenant"})


class InvoiceTierOut(Schema):
    since = String()
    up_to = String(allow_none=True)
    quantity = String()
    unit_price = String()
    amount = String(metadata={"description": "exact, before the line's rounding"})


class InvoiceLineOut(Schema):
    meter = String(metadata={"description": "a meter, or `base_fee`"})
    dimension = String()
    description = String()
    quantity = String(metadata={"description": DECIMAL})
    included = String()
    billable = String()
    unit_price = String(allow_none=True, metadata={"description": "per unit; null when "
                                                                  "priced through tiers"})
    markup_percent = String(allow_none=True)
    tiers = List(Nested(InvoiceTierOut))
    amount = String(metadata={"description": "rounded once, half up, to the currency's "
                                             "minor unit"})


class DraftOut(Schema):
    tenant = Nested(TenantOut)
    since = DateTime()
    until = DateTime()
    plan = Nested(PlanOut)
    currency = String()
    lines = List(Nested(InvoiceLineOut))
    total = String(metadata={"description": "the sum of the rounded lines"})


class MonthQuery(Strict):
    month = String(load_default=None, metadata={
        "description": "a calendar month (UTC), `YYYY-MM`; default: this month",
        "example": "2026-12"})


class ClientBillOut(Schema):
    tenant = Nested(TenantOut)
    usage = Dict(metadata={"description": "per meter, " + DECIMAL})
    plan = String(allow_none=True, metadata={"description": "the client's plan, or null"})
    currency = String(allow_none=True)
    cost = String(allow_none=True, metadata={"description": "its usage at the agency's "
                                                            "wholesale rates; null: no "
                                                            "wholesale plan"})
    price = String(allow_none=True, metadata={"description": "its draft invoice's total; "
                                                             "null: no plan"})
    margin = String(allow_none=True, metadata={"description": "price - cost; null when "
                                                              "their currencies differ"})


class RebillingOut(Schema):
    since = DateTime()
    until = DateTime()
    wholesale_plan = String(allow_none=True)
    currency = String(allow_none=True, metadata={"description": "of the totals; null: "
                                                                "several currencies"})
    items = List(Nested(ClientBillOut))
    total = Dict(metadata={"description": "`cost`, `price`, `margin`: sums of the "
                                          "rounded per-client figures"})
