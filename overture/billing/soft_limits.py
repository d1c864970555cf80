"""Soft thresholds: an alert when a limit's use first reaches 50, 80, 100 % (the
workspace's thresholds) in a calendar month, by mail to its owners and admins
(`alerts`), once per tenant, limit, threshold and month.

Checked where use grows under a limit (a call's holds settled, a run started), in that
transaction. This process remembers what it sent, so a check past a threshold costs no
database round trip the second time.
"""

from __future__ import annotations

import threading
import uuid
from datetime import datetime
from decimal import Decimal

from overture.billing import alerts
from overture.billing.budgets import Limit, label

_sent: set[tuple[uuid.UUID, tuple[object, ...], int, str]] = set()
_lock = threading.Lock()


def alert_meter(limit: Limit) -> str:
    """The name the alert is kept under: a workspace budget is `budget`, a cap its
    meter; an agent's or workflow's limit adds whose (at most 60 characters)."""
    base = alerts.BUDGET if limit.is_money else limit.meter
    if limit.agent_id:
        return f"{base}/a:{limit.agent_id.hex}"
    if limit.workflow_id:
        return f"{base}/w:{limit.workflow_id.hex}"
    return base


def crossed(used: Decimal, limit: Decimal, thresholds: tuple[int, ...]) -> list[int]:
    return [t for t in thresholds if used * 100 >= limit * t]


def check(tenant_id: uuid.UUID, limit: Limit, used: Decimal, thresholds: tuple[int, ...],
          now: datetime) -> None:
    """Send each threshold's alert that `used` reached and that was not sent this month."""
    month = now.strftime("%Y-%m")
    for threshold in crossed(used, limit.limit, thresholds):
        mark = (tenant_id, limit.key, threshold, month)
        if mark in _sent:
            continue
        if limit.is_money and limit.agent_id is None and limit.workflow_id is None:
            alerts.send_budget_alert(tenant_id, threshold, used, limit.limit, now=now)
        else:
            alerts.send_usage_alert(tenant_id, alert_meter(limit), threshold, used, limit.limit,
                                    meter_label=_label(limit), now=now)
        with _lock:
            _sent.add(mark)


def _label(limit: Limit) -> str:
    whose = " of an agent" if limit.agent_id else " of a workflow" if limit.workflow_id else ""
    return (label(limit) + whose).lower()
