"""Usage: what the tenant this request acts in consumed, per meter, over any period
(whole hours), optionally per agent, workflow, dimension and day; an agency's clients
and their sum; the raw events as CSV or JSON Lines. All read with `billing.read`, from
the roll-ups (the export reads the events themselves, streamed)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

from flask import Response, stream_with_context

from overture.billing import export, meters, periods, reports
from overture.platform.db import activate_scope, current_scope
from overture.platform.errors import ValidationFailed
from overture.web.api import api
from overture.web.api.usage_schemas import (
    ClientsOut,
    ExportQuery,
    MetersOut,
    PeriodQuery,
    UsageOut,
    UsageQuery,
)
from overture.web.auth import current_access, require

TAGS = ["Usage"]
READ = "billing.read"


def period_of(query: dict[str, Any]) -> periods.Period:
    return periods.parse(query.get("since"), query.get("until"), query.get("month"))


def group_by(value: str) -> list[str]:
    asked = [g.strip() for g in (value or "").split(",") if g.strip()]
    unknown = [g for g in asked if g not in reports.GROUPS]
    if unknown:
        raise ValidationFailed.field("group_by", f"unknown {', '.join(unknown)}; any of "
                                                 + ", ".join(reports.GROUPS))
    return [g for g in reports.GROUPS if g in asked]


def amounts(sums: dict[str, Decimal]) -> dict[str, str]:
    return {meter: plain(quantity) for meter, quantity in sorted(sums.items())}


def plain(quantity: Decimal) -> str:
    """A quantity without trailing zeros or an exponent: "12", "0.0042"."""
    text = f"{quantity.normalize():f}"
    return "0" if text in ("-0", "") else text


@api.get("/usage/meters")
@require(READ)
@api.output(MetersOut)
@api.doc(tags=TAGS, summary="The meter catalogue: every quantity Overture counts")
def list_meters() -> dict[str, Any]:
    return {"items": [dataclasses.asdict(m) for m in meters.CATALOGUE]}


@api.get("/usage")
@require(READ)
@api.input(UsageQuery, location="query", arg_name="query")
@api.output(UsageOut)
@api.doc(tags=TAGS, summary="This tenant's usage over a period, per meter, and optionally "
                            "per agent, workflow, dimension and day",
         description="Read from hourly and daily roll-ups kept as the work is recorded. A "
                     "period is whole UTC hours (default: this month so far); a bad one "
                     "is a 422 naming the field.")
def get_usage(query: dict[str, Any]) -> dict[str, Any]:
    period, groups = period_of(query), group_by(query["group_by"])
    lines = reports.summary(period, set(groups))
    return {"since": period.since, "until": period.until, "group_by": groups,
            "items": [{**dataclasses.asdict(line), "quantity": plain(line.quantity)}
                      for line in lines],
            "totals": amounts(reports.totals(lines)),
            "levels": amounts(reports.levels(period.until))}


@api.get("/usage/clients")
@require(READ)
@api.input(PeriodQuery, location="query", arg_name="query")
@api.output(ClientsOut)
@api.doc(tags=TAGS, summary="An agency's client workspaces, each with its usage per meter "
                            "over a period, and their sum",
         description="Lists the clients whose usage the caller may read (`billing.read` "
                     "there); the platform's administrators see every tenant.")
def get_client_usage(query: dict[str, Any]) -> dict[str, Any]:
    access = current_access()
    if not (access.tenant.is_agency or access.is_platform):
        raise ValidationFailed.field("X-Overture-Tenant", "name an agency: this lists its "
                                                          "client workspaces")
    period = period_of(query)
    found, total = reports.client_usage(access, period)
    return {"since": period.since, "until": period.until,
            "items": [{"tenant": c.tenant, "totals": amounts(c.totals)} for c in found],
            "total": amounts(total)}


@api.get("/usage/events")
@require(READ)
@api.input(ExportQuery, location="query", arg_name="query")
@api.doc(tags=TAGS, summary="This tenant's raw usage events of a period, oldest first, as "
                            "JSON Lines or CSV, streamed",
         responses={200: {"description": "a stream of usage events",
                          "content": {"application/x-ndjson": {}, "text/csv": {}}}})
def export_usage(query: dict[str, Any]) -> Response:
    period, fmt = period_of(query), query["format"]
    return stream(period, fmt, "usage")


def stream(period: periods.Period, fmt: str, name: str) -> Response:
    """The period's events as a download, read as it is sent (the console's too)."""
    scope = current_scope()

    def lines() -> Iterator[str]:
        activate_scope(scope)  # the stream outlives the view; keep its tenant
        render = export.csv_lines if fmt == "csv" else export.json_lines
        yield from render(export.iter_events(period))

    response = Response(stream_with_context(lines()),
                        mimetype="text/csv" if fmt == "csv" else "application/x-ndjson")
    stamp = f"{period.since:%Y%m%d%H}-{period.until:%Y%m%d%H}"
    response.headers["Content-Disposition"] = f'attachment; filename="{name}-{stamp}.{fmt}"'
    return response
