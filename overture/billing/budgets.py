"""A workspace's budgets and caps: hard monthly limits, kept per calendar month (UTC).

- The **budget**: money, measured on the month's model cost (`llm_cost`, USD).
- **Caps**: a quantity of one meter a month (`runs_started`, `steps`,
  `agent_invocations`, `action_calls`).

Each limit is the workspace's, or one agent's, or one workflow's. Soft thresholds
(percentages of each limit, 50/80/100 by default) send an alert once a month each.
What a limit does when reached is in `enforce`; this module keeps the settings, checks
them and audits every change.

    settings = budgets.read()
    budgets.replace(Settings(budget=Decimal("5"), caps=[...], thresholds=(50, 80, 100)))
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import JSON, Numeric, String, UniqueConstraint, delete, select
from sqlalchemy.orm import Mapped, mapped_column

from overture.billing import policy_cache
from overture.billing.meters import (
    ACTION_CALLS,
    AGENT_CALLS,
    MODEL_COST,
    RUNS_STARTED,
    STEPS,
    meter,
)
from overture.platform import audit
from overture.platform.db import TenantOwned, current_tenant_id, db, utcnow
from overture.platform.errors import ValidationFailed
from overture.platform.ids import parse_id

NONE = uuid.UUID(int=0)  # no agent, no workflow: the workspace's own limit
CAPPED = (RUNS_STARTED, STEPS, AGENT_CALLS, ACTION_CALLS)
LIMITED = (MODEL_COST, *CAPPED)
DEFAULT_THRESHOLDS = (50, 80, 100)
MAX_LIMITS = 200  # per workspace
MAX_AMOUNT = Decimal("1000000000")
CENT = Decimal("0.01")


class BudgetLimit(TenantOwned, db.Model):
    __tablename__ = "budget_limits"
    __table_args__ = (UniqueConstraint("tenant_id", "meter", "agent_id", "workflow_id"),)

    meter: Mapped[str] = mapped_column(String(40))
    agent_id: Mapped[uuid.UUID]  # NONE: every agent
    workflow_id: Mapped[uuid.UUID]  # NONE: every workflow
    limit_value: Mapped[Decimal] = mapped_column(Numeric(20, 6))
    thresholds: Mapped[list[int]] = mapped_column(JSON, default=list)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


@dataclass(frozen=True)
class Limit:
    """One hard monthly limit. `agent_id`/`workflow_id` None: the whole workspace."""

    meter: str
    limit: Decimal
    agent_id: uuid.UUID | None = None
    workflow_id: uuid.UUID | None = None
    # `key` as one string, hashed once: what a process keeps its allowances under
    ident: str = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "ident", "|".join(map(str, self.key)))

    @property
    def is_money(self) -> bool:
        return self.meter == MODEL_COST

    @property
    def key(self) -> tuple[str, uuid.UUID, uuid.UUID]:
        return (self.meter, self.agent_id or NONE, self.workflow_id or NONE)

    def applies_to(self, agent_id: uuid.UUID | None, workflow_id: uuid.UUID | None) -> bool:
        return self.agent_id in (None, agent_id) and self.workflow_id in (None, workflow_id)

    def to_json(self) -> dict[str, Any]:
        return {"meter": self.meter, "limit": plain(self.limit),
                "agent_id": str(self.agent_id) if self.agent_id else None,
                "workflow_id": str(self.workflow_id) if self.workflow_id else None}


@dataclass(frozen=True)
class Settings:
    budget: Decimal | None = None  # the workspace's monthly model spend, USD
    caps: tuple[Limit, ...] = ()  # every other limit (agent/workflow budgets included)
    thresholds: tuple[int, ...] = DEFAULT_THRESHOLDS
    currency: str = "USD"
    limits: tuple[Limit, ...] = field(default=(), compare=False)  # all of them, budget first

    @property
    def empty(self) -> bool:
        return self.budget is None and not self.caps

    def to_json(self) -> dict[str, Any]:
        return {"budget": plain(self.budget) if self.budget is not None else None,
                "currency": self.currency, "thresholds": list(self.thresholds),
                "caps": [c.to_json() for c in self.caps]}


def read() -> Settings:
    """The scope tenant's limits."""
    rows = list(db.session.scalars(select(BudgetLimit).order_by(
        BudgetLimit.meter, BudgetLimit.agent_id, BudgetLimit.workflow_id)))
    return settings_of(rows)


def settings_of(rows: list[BudgetLimit]) -> Settings:
    limits = [Limit(r.meter, Decimal(r.limit_value), _opt(r.agent_id), _opt(r.workflow_id))
              for r in rows]
    budget = next((x for x in limits if x.key == (MODEL_COST, NONE, NONE)), None)
    thresholds = tuple(rows[0].thresholds) if rows and rows[0].thresholds else DEFAULT_THRESHOLDS
    ordered = ([budget] if budget else []) + [x for x in limits if x is not budget]
    return Settings(budget.limit if budget else None,
                    tuple(x for x in limits if x is not budget), thresholds,
                    limits=tuple(ordered))


def replace(new: Settings) -> Settings:
    """Make `new` the scope tenant's limits (all of them), audited with what changed.
    The caller commits."""
    before = read()
    wanted = _all_limits(new)
    db.session.execute(delete(BudgetLimit))
    for item in wanted:
        db.session.add(BudgetLimit(meter=item.meter, agent_id=item.agent_id or NONE,
                                   workflow_id=item.workflow_id or NONE,
                                   limit_value=item.limit, thresholds=list(new.thresholds)))
    db.session.flush()
    after = read()
    policy_cache.forget(current_tenant_id())
    if after.to_json() != before.to_json():
        audit.record("billing.budget_changed", target_type="tenant",
                     target_id=current_tenant_id(),
                     details={"before": before.to_json(), "after": after.to_json()})
    return after


def _all_limits(new: Settings) -> list[Limit]:
    found = ([Limit(MODEL_COST, new.budget)] if new.budget is not None else []) + list(new.caps)
    seen: set[tuple[str, uuid.UUID, uuid.UUID]] = set()
    for i, item in enumerate(found):
        if item.key in seen:
            raise ValidationFailed.field(f"caps.{i}", "this limit is given twice")
        seen.add(item.key)
    return found


# --------------------------------------------------------------------------- parsing


def parse(body: Any) -> Settings:
    """Settings from a request's JSON (`budget`, `thresholds`, `caps`); ValidationFailed
    naming each field that does not fit."""
    if not isinstance(body, dict):
        raise ValidationFailed.field("body", "a JSON object")
    errors: list[dict[str, str]] = []
    budget = _amount(body.get("budget"), "budget", errors, money=True)
    thresholds = _thresholds(body.get("thresholds", list(DEFAULT_THRESHOLDS)), errors)
    raw_caps = body.get("caps") or []
    if not isinstance(raw_caps, list) or len(raw_caps) > MAX_LIMITS:
        errors.append({"field": "caps", "message": f"a list of at most {MAX_LIMITS} limits"})
        raw_caps = []
    caps = [c for i, raw in enumerate(raw_caps) if (c := _cap(raw, f"caps.{i}", errors))]
    if errors:
        raise ValidationFailed(errors)
    return Settings(budget, tuple(caps), thresholds)


def _cap(raw: Any, where: str, errors: list[dict[str, str]]) -> Limit | None:
    if not isinstance(raw, dict):
        errors.append({"field": where, "message": "an object with meter and limit"})
        return None
    name = raw.get("meter")
    if name not in LIMITED:
        errors.append({"field": f"{where}.meter", "message": f"one of {', '.join(LIMITED)}"})
        return None
    amount = _amount(raw.get("limit"), f"{where}.limit", errors, money=name == MODEL_COST)
    agent_id = _id(raw.get("agent_id"), f"{where}.agent_id", errors)
    workflow_id = _id(raw.get("workflow_id"), f"{where}.workflow_id", errors)
    if amount is None:
        if not any(e["field"] == f"{where}.limit" for e in errors):
            errors.append({"field": f"{where}.limit", "message": "required"})
        return None
    if agent_id and workflow_id:
        errors.append({"field": where, "message": "name an agent or a workflow, not both"})
        return None
    return Limit(name, amount, agent_id, workflow_id)


def _amount(raw: Any, where: str, errors: list[dict[str, str]], money: bool) -> Decimal | None:
    if raw is None or raw == "":
        return None
    try:
        value = Decimal(str(raw).strip())
    except InvalidOperation:
        value = Decimal(-1)
    ok = value.is_finite() and 0 < value <= MAX_AMOUNT and (
        value == value.quantize(CENT) if money else value == value.to_integral_value())
    if isinstance(raw, bool) or not ok:
        what = "an amount in USD above 0, in cents at most" if money \
            else "a whole number above 0"
        errors.append({"field": where, "message": what})
        return None
    return value


def _thresholds(raw: Any, errors: list[dict[str, str]]) -> tuple[int, ...]:
    if isinstance(raw, str):
        raw = [p.strip().rstrip("%") for p in raw.split(",") if p.strip()]
    try:
        values = sorted({int(v) for v in raw}) if isinstance(raw, list) else None
    except (TypeError, ValueError):
        values = None
    if values is None or len(values) > 10 or any(not 1 <= v <= 100 for v in values):
        errors.append({"field": "thresholds",
                       "message": "up to 10 whole percentages from 1 to 100, e.g. 50, 80, 100"})
        return DEFAULT_THRESHOLDS
    return tuple(values)


def _id(raw: Any, where: str, errors: list[dict[str, str]]) -> uuid.UUID | None:
    if raw in (None, ""):
        return None
    value = parse_id(str(raw))
    if value is None:
        errors.append({"field": where, "message": "not an id"})
    return value


def _opt(value: uuid.UUID) -> uuid.UUID | None:
    return None if value == NONE else value


def plain(amount: Decimal) -> str:
    return format(amount.normalize(), "f") if amount == amount.to_integral_value() \
        else format(amount.quantize(Decimal("0.000001")).normalize(), "f")


def label(limit: Limit) -> str:
    """What a person reads for the limit's meter."""
    return "Model spend" if limit.is_money else meter(limit.meter).label
