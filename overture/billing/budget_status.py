"""Where the scope tenant stands against its limits this month: what each has used,
what calls hold on it now, and the share of it used, for the API and the console."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from overture.billing import budgets, counters
from overture.billing.budgets import Limit
from overture.billing.reports import month_used
from overture.billing.soft_limits import crossed
from overture.platform.db import current_tenant_id, db


@dataclass(frozen=True)
class LimitStatus:
    limit: Limit
    used: Decimal
    held: Decimal  # by calls running now
    reached: list[int]  # the soft thresholds reached

    @property
    def percent(self) -> int:
        return min(100, int(self.used * 100 / self.limit.limit)) if self.limit.limit else 100

    @property
    def exhausted(self) -> bool:
        return self.used >= self.limit.limit

    def to_json(self) -> dict[str, Any]:
        return {**self.limit.to_json(), "label": budgets.label(self.limit),
                "used": budgets.plain(self.used), "held": budgets.plain(self.held),
                "percent": self.percent, "reached": self.reached,
                "exhausted": self.exhausted}


def status(settings: budgets.Settings, now: datetime) -> list[LimitStatus]:
    """Each limit of `settings` (the scope tenant's), the budget first."""
    tenant_id = current_tenant_id()
    if tenant_id is None:
        return []
    conn = db.session.connection()
    month = counters.month_key(now)
    found = []
    for limit in settings.limits:
        used = month_used(conn, tenant_id, limit.meter, now, limit.agent_id, limit.workflow_id)
        found.append(LimitStatus(limit, used,
                                 counters.reserved_now(conn, tenant_id, month, limit),
                                 crossed(used, limit.limit, settings.thresholds)))
    return found
