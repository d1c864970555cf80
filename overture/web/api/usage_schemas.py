"""Request and response shapes of usage: the meter catalogue, a tenant's usage over a
period, an agency's clients, and the raw events' export."""

from __future__ import annotations

from apiflask import Schema
from apiflask.fields import UUID, Date, DateTime, Dict, Integer, List, Nested, String
from apiflask.validators import OneOf

from overture.billing.reports import GROUPS
from overture.web.api.schemas import Strict, TenantOut

DECIMAL = "a decimal string (quantities and money are exact)"


class PeriodQuery(Strict):
    month = String(load_default=None, metadata={
        "description": "a calendar month (UTC), `YYYY-MM`; instead of since and until",
        "example": "2026-12"})
    since = String(load_default=None, metadata={
        "description": "inclusive: a date (`YYYY-MM-DD`, from its start) or an ISO 8601 "
                       "time on the hour (without a zone: UTC); default: the 1st of this "
                       "month"})
    until = String(load_default=None, metadata={
        "description": "exclusive: an ISO 8601 time on the hour, or a date (`YYYY-MM-DD`, "
                       "that day included); default: the end of the current hour. A "
                       "period spans at most 366 days."})


class UsageQuery(PeriodQuery):
    group_by = String(load_default="", metadata={
        "description": "comma-separated, any of " + ", ".join(f"`{g}`" for g in GROUPS)
                       + ": a line per meter and each of them (`dimension`: provider and "
                         "model, or connector)", "example": "agent,day"})


class ExportQuery(PeriodQuery):
    format = String(load_default="jsonl", validate=OneOf(["jsonl", "csv"]))


class MeterOut(Schema):
    name = String()
    label = String()
    unit = String()
    kind = String(metadata={"description": "`counter`: a period's sum; `gauge`: a level "
                                           "kept as signed changes (a period's sum is its "
                                           "net change); `distinct`: subjects counted once "
                                           "per calendar month"})
    description = String()
    dimension = String(allow_none=True, metadata={"description": "what the dimension "
                                                                 "holds, if the meter has one"})


class MetersOut(Schema):
    items = List(Nested(MeterOut))


class LineOut(Schema):
    meter = String()
    quantity = String(metadata={"description": DECIMAL})
    events = Integer(metadata={"description": "usage events summed"})
    agent_id = UUID(allow_none=True, metadata={"description": "when grouped by agent; null: "
                                                              "usage of no agent"})
    workflow_id = UUID(allow_none=True, metadata={"description": "when grouped by workflow"})
    dimension = String(allow_none=True, metadata={"description": "when grouped by dimension"})
    day = Date(allow_none=True, metadata={"description": "when grouped by day (UTC)"})


class UsageOut(Schema):
    since = DateTime()
    until = DateTime()
    group_by = List(String())
    items = List(Nested(LineOut))
    totals = Dict(keys=String(), values=String(), metadata={
        "description": "per meter, the period's quantity (" + DECIMAL + ")"})
    levels = Dict(keys=String(), values=String(), metadata={
        "description": "per gauge meter (knowledge storage), its level at `until`"})


class ClientOut(Schema):
    tenant = Nested(TenantOut)
    totals = Dict(keys=String(), values=String(), metadata={"description": "per meter"})


class ClientsOut(Schema):
    since = DateTime()
    until = DateTime()
    items = List(Nested(ClientOut))
    total = Dict(keys=String(), values=String(), metadata={
        "description": "per meter, the sum over the clients listed"})
