"""Usage: what the workspace consumed in a month or between two dates, by meter, by
agent and by workflow, a bar per day for one meter, the raw events to download; for an
agency, each client workspace and their sum. The same services as /api/v1/usage, with
the same permission (`billing.read`); read from the roll-ups."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from flask import request

from overture.billing import meters, periods, reports
from overture.billing.meters import (
    ACTION_CALLS,
    AGENT_CALLS,
    INPUT_TOKENS,
    MODEL_COST,
    OUTPUT_TOKENS,
    RUNS_STARTED,
    STEPS,
)
from overture.orchestration import workflows
from overture.orchestration.agents import service as agents
from overture.platform.db import utcnow
from overture.web.api.usage import stream
from overture.web.console import bp
from overture.web.console.context import console_access, page, register_nav, render
from overture.web.console.forms import FormErrors, form_errors, status_of
from overture.web.console.home import count, money

READ = "billing.read"
MONTHS = 12  # months offered by the picker
CHARTS = (MODEL_COST, STEPS, RUNS_STARTED, AGENT_CALLS, INPUT_TOKENS, ACTION_CALLS)
BY_AGENT = (AGENT_CALLS, INPUT_TOKENS, OUTPUT_TOKENS, MODEL_COST)
BY_WORKFLOW = (RUNS_STARTED, STEPS, AGENT_CALLS, ACTION_CALLS, MODEL_COST)
BY_CLIENT = (RUNS_STARTED, STEPS, AGENT_CALLS, INPUT_TOKENS, OUTPUT_TOKENS, MODEL_COST)
CHART_HEIGHT = 100  # the bars' SVG viewBox height
DASH = "\N{EN DASH}"

register_nav("Usage", "console.usage", READ, "billing")


def shown(meter: str, quantity: Decimal | None) -> str:
    """A quantity as people read it: money, bytes, or a count."""
    amount = Decimal(quantity or 0)
    if meters.meter(meter).unit == "USD":
        return money(amount)
    if meters.meter(meter).unit == "bytes":
        return size(amount)
    return count(int(amount)) if amount == amount.to_integral_value() else f"{amount:,f}"


def size(amount: Decimal) -> str:
    value = float(amount)
    for unit in ("B", "KB", "MB", "GB"):
        if abs(value) < 1024 or unit == "GB":
            return f"{value:,.0f} {unit}" if unit == "B" else f"{value:,.1f} {unit}"
        value /= 1024
    return f"{value:,.1f} GB"


@dataclass(frozen=True)
class Bar:
    day: date
    quantity: Decimal
    height: int  # of CHART_HEIGHT

    @property
    def top(self) -> int:
        return CHART_HEIGHT - self.height


def bars(lines: list[reports.Line], meter: str, period: periods.Period) -> list[Bar]:
    """A bar per day of the period for one meter, scaled to the highest day."""
    per_day = {line.day: line.quantity for line in lines if line.meter == meter}
    highest = max((q for q in per_day.values() if q > 0), default=Decimal(0))
    out = []
    for day in period.days:
        quantity = per_day.get(day, Decimal(0))
        height = 0 if highest == 0 or quantity <= 0 else max(1, round(
            CHART_HEIGHT * quantity / highest))
        out.append(Bar(day, quantity, int(height)))
    return out


def _table(lines: list[reports.Line], key: str, columns: tuple[str, ...],
           names: dict[uuid.UUID, str]) -> list[dict[str, Any]]:
    """Rows of one grouping (agent or workflow), biggest spender first."""
    rows: dict[Any, dict[str, Decimal]] = {}
    for line in lines:
        if line.meter in columns:
            values = rows.setdefault(getattr(line, key), {})
            values[line.meter] = values.get(line.meter, Decimal(0)) + line.quantity
    table = [{"id": ident, "name": _name(ident, names), "values": values}
             for ident, values in rows.items()]
    return sorted(table, key=lambda r: (-r["values"].get(MODEL_COST, Decimal(0)),
                                        r["id"] is None, r["name"].lower()))


def _name(ident: uuid.UUID | None, names: dict[uuid.UUID, str]) -> str:
    if ident is None:
        return ""
    return names.get(ident) or f"{str(ident)[:8]}… (deleted)"


def _names() -> tuple[dict[uuid.UUID, str], dict[uuid.UUID, str]]:
    """Agents' and workflows' names, for people who may see them (`workflow.read`)."""
    if not console_access().can("workflow.read"):
        return {}, {}
    return ({a.id: a.name for a in agents.list_agents(None, 200).items},
            {w.id: w.name for w in workflows.list_workflows(None, 200).items})


def label(period: periods.Period) -> str:
    """"1-31 December 2026" or "3 December 2026, 05:00-4 December 2026, 14:00" (UTC),
    with an en dash."""
    first, last = period.since, period.until - periods.HOUR
    if (period.since.hour, period.until.hour) == (0, 0):
        if first.date() == last.date():
            return f"{first:%-d %B %Y}"
        start = f"{first:%-d}" if (first.year, first.month) == (last.year, last.month) \
            else f"{first:%-d %B}" if first.year == last.year else f"{first:%-d %B %Y}"
        return f"{start} {DASH} {last:%-d %B %Y}"
    return f"{first:%-d %B %Y, %H:00} {DASH} {period.until:%-d %B %Y, %H:00}"


def _period_form() -> dict[str, str]:
    return {name: request.args.get(name, "").strip() for name in ("month", "since", "until")}


def _period(form: dict[str, str]) -> periods.Period:
    """The picked month, or the picked dates (both days included), or this month."""
    if form["since"] or form["until"]:
        return periods.parse(form["since"] or None, form["until"] or None)
    return periods.parse(month=form["month"] or None)


def _months(now: datetime) -> list[tuple[str, str]]:
    first = now.astimezone(UTC).replace(day=1)
    out = []
    for _ in range(MONTHS):
        out.append((f"{first:%Y-%m}", f"{first:%B %Y}"))
        first = (first - timedelta(days=1)).replace(day=1)
    return out


STATS = (RUNS_STARTED, STEPS, AGENT_CALLS, INPUT_TOKENS, OUTPUT_TOKENS, MODEL_COST,
         ACTION_CALLS, meters.EMBEDDINGS, meters.PORTAL_USERS)


@bp.get("/usage", endpoint="usage")
@page(READ)
def usage_page() -> Any:
    access = console_access()
    form = _period_form()
    chart = request.args.get("chart", "")
    context: dict[str, Any] = {"clients": None}
    errors: FormErrors
    with form_errors(set(form)) as errors:
        period = _period(form)
        by_day = reports.summary(period, {"day"})
        totals = reports.totals(by_day)
        chart = chart if chart in CHARTS else (
            MODEL_COST if totals.get(MODEL_COST) else STEPS)
        agent_names, workflow_names = _names()
        by_agent = [line for line in reports.summary(period, {"agent"}) if line.agent_id]
        context.update(
            period=period, period_label=label(period), totals=totals,
            levels=reports.levels(period.until), bars=bars(by_day, chart, period),
            agents=_table(by_agent, "agent_id", BY_AGENT, agent_names),
            workflows=_table(reports.summary(period, {"workflow"}), "workflow_id",
                             BY_WORKFLOW, workflow_names))
        if access.tenant.is_agency or access.is_platform:
            context["clients"] = reports.client_usage(access, period)
    return _render(form, errors, chart, **context)


@bp.get("/usage/export")
@page(READ)
def export_usage() -> Any:
    fmt = request.args.get("format", "csv")
    form = _period_form()
    errors: FormErrors
    with form_errors(set(form)) as errors:
        period = _period(form)
        return stream(period, fmt if fmt in ("csv", "jsonl") else "csv",
                      f"usage-{console_access().tenant.slug}")
    return _render(form, errors, STEPS)


def _render(form: dict[str, str], errors: FormErrors, chart: str, **context: Any) -> Any:
    """The page; with `errors`, the picker and its messages only."""
    return render("console/usage.html", status_of(errors), title="Usage", form=form,
                  errors=errors, chart=chart, months=_months(utcnow()), charts=CHARTS,
                  stats=STATS, by_agent=BY_AGENT, by_workflow=BY_WORKFLOW,
                  by_client=BY_CLIENT, meter=meters.meter, shown=shown,
                  chart_height=CHART_HEIGHT, query={k: v for k, v in form.items() if v},
                  **{"clients": None, "period": None, **context})
