"""Hard limits and the billing standing, enforced where work starts and where it spends.

- `admit_run(workflow_id)`: in the transaction that creates a run (every run: API,
  console, portal, triggers, schedules, subworkflows, replays). Refuses with a 402
  problem (`PastDue`, `BudgetExceeded`, `QuotaExceeded`) when the tenant is restricted
  or a limit of the workspace (or of this workflow) is used up. A cap on
  `runs_started` is taken under the counter's row lock, so racing starts never pass it.
- `hold(...)` before each model call, agent invocation and action call: a hold on the
  counters of every limit that applies (see `counters`), in a short transaction of its
  own; `BudgetExceeded`/`QuotaExceeded` when none is left. `complete` once the call
  returned (its actual cost); `settle` in the transaction that records the usage.
- Caps on steps are checked as each step starts, from allowances each process takes
  in advance (`step_caps`): no hold per step.

Cheap when nothing is limited: a tenant's limits and standing are read once per
`policy_cache.TTL` seconds per process (`policy`); a tenant without limits then costs
a dict lookup.
A change made through `budgets.replace` is seen at once by this process, and by the
others within that time.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import Connection, select

from overture.billing import counters, policy_cache, soft_limits
from overture.billing.budgets import BudgetLimit, Limit, label, settings_of
from overture.billing.meters import MODEL_COST, RUNS_STARTED
from overture.billing.reports import month_used, month_used_by_workflow
from overture.billing.standing import BillingStanding, grace
from overture.platform.db import current_tenant_id, db, tenant_transaction, utcnow
from overture.platform.errors import BudgetExceeded, PastDue, PaymentRequired, QuotaExceeded
from overture.tenants.models import Tenant

WAIT = 10.0  # seconds a call waits for other calls' estimates to settle, at most


@dataclass(frozen=True)
class Policy:
    limits: tuple[Limit, ...]
    thresholds: tuple[int, ...]
    restricted_from: datetime | None  # past due: when the grace period ends

    def applying(self, meter: str, agent_id: uuid.UUID | None,
                 workflow_id: uuid.UUID | None) -> list[Limit]:
        return sorted((x for x in self.limits
                       if x.meter == meter and x.applies_to(agent_id, workflow_id)),
                      key=lambda x: tuple(map(str, x.key)))


def policy(tenant_id: uuid.UUID) -> Policy:
    """The tenant's limits and standing, as this process last read them."""
    found = policy_cache.get(tenant_id)
    if found is not None:
        return found  # type: ignore[no-any-return]
    with tenant_transaction(tenant_id) as conn:
        rows = [BudgetLimit(**dict(r._mapping)) for r in conn.execute(
            select(BudgetLimit.meter, BudgetLimit.agent_id, BudgetLimit.workflow_id,
                   BudgetLimit.limit_value, BudgetLimit.thresholds)
            .where(BudgetLimit.tenant_id == tenant_id))]
        since = _past_due_since(conn, tenant_id)
        parent_id = conn.execute(select(Tenant.parent_id).where(Tenant.id == tenant_id)).scalar()
    if since is None and parent_id is not None:  # the agency pays for its clients' work
        with tenant_transaction(parent_id) as conn:
            since = _past_due_since(conn, parent_id)
    settings = settings_of(rows)
    found_policy = Policy(settings.limits, settings.thresholds,
                          since + grace() if since is not None else None)
    policy_cache.put(tenant_id, found_policy)
    return found_policy


def _past_due_since(conn: Connection, tenant_id: uuid.UUID) -> datetime | None:
    return conn.execute(select(BillingStanding.past_due_since).where(
        BillingStanding.tenant_id == tenant_id)).scalar()


# --------------------------------------------------------------------------- runs


def admit_run(workflow_id: uuid.UUID) -> None:
    """Refuse a new run of the scope tenant that its standing or limits forbid (402)."""
    tenant_id = current_tenant_id()
    if tenant_id is None:
        return
    rules = policy(tenant_id)
    now = utcnow()
    if rules.restricted_from is not None and now >= rules.restricted_from:
        raise PastDue("payment is past due: new runs are paused until the unpaid invoice "
                      "is paid; nothing was deleted",
                      restricted_from=rules.restricted_from.isoformat())
    limits = [x for x in rules.limits if x.agent_id is None and x.workflow_id in (None,
                                                                                  workflow_id)]
    if not limits:
        return
    month = counters.month_key(now)
    conn = db.session.connection()
    limits.sort(key=lambda x: tuple(map(str, x.key)))
    for limit in limits:  # counted in this transaction: read under the counter's lock
        if limit.meter == RUNS_STARTED:
            counters.locked(conn, tenant_id, month, limit)
    per_workflow = month_used_by_workflow(conn, tenant_id, {x.meter for x in limits}, now)
    holding = counters.held(conn, tenant_id, month)
    for limit in limits:
        used = sum((q for (meter, workflow_id), q in per_workflow.items()
                    if meter == limit.meter and limit.workflow_id in (None, workflow_id)),
                   Decimal(0))
        if used + holding.get(limit.key, Decimal(0)) >= limit.limit:
            raise refusal(limit, used)
        if limit.meter == RUNS_STARTED:  # this run counts
            soft_limits.check(tenant_id, limit, used + 1, rules.thresholds, now)


def refusal(limit: Limit, used: Decimal) -> PaymentRequired:
    """The 402 problem naming the limit reached."""
    whose = f" of agent {limit.agent_id}" if limit.agent_id else \
        f" of workflow {limit.workflow_id}" if limit.workflow_id else ""
    extra = {k: str(v) for k, v in (("agent_id", limit.agent_id),
                                    ("workflow_id", limit.workflow_id)) if v}
    if limit.is_money:
        return BudgetExceeded(f"the monthly budget{whose} of ${limit.limit:.2f} is spent "
                              f"(${used:.2f} this month)", limit=_amount(limit.limit),
                              used=_amount(used), meter=limit.meter, **extra)
    return QuotaExceeded(f"the monthly cap{whose} on {label(limit).lower()} is reached "
                         f"({_count(used)} of {_count(limit.limit)})",
                         limit=_count(limit.limit), used=_count(used), meter=limit.meter,
                         **extra)


# --------------------------------------------------------------------------- calls


def hold(tenant_id: uuid.UUID, meter: str, amount: Decimal, key: str, *,
         agent_id: uuid.UUID | None = None, workflow_id: uuid.UUID | None = None,
         certain: bool = False, wait: float = WAIT) -> bool:
    """Hold `amount` of `meter` for one call under `key` before making it, outside the
    caller's transaction; False when no limit applies (nothing to settle). Raises the
    402 problem of the limit reached. `certain`: the amount is what the call will use
    (a count), not an estimate."""
    limits = policy(tenant_id).applying(meter, agent_id, workflow_id)
    if not limits:
        return False
    deadline = time.monotonic() + wait
    pause = 0.05
    while True:
        blocked = _try_hold(tenant_id, limits, amount, key, certain)
        if blocked is None:
            return True
        limit, used, settling = blocked
        if not settling or time.monotonic() + pause > deadline:
            raise refusal(limit, used)
        time.sleep(pause)  # other calls' estimates may settle below their holds
        pause = min(pause * 2, 0.5)


def _try_hold(tenant_id: uuid.UUID, limits: list[Limit], amount: Decimal, key: str,
              certain: bool, again: bool = True) -> tuple[Limit, Decimal, bool] | None:
    """Hold on every limit, or on none: (the limit, its use, whether estimates in flight
    may still free room) when one has none left."""
    now = utcnow()
    try:
        with tenant_transaction(tenant_id) as conn:
            for limit in limits:
                _hold_one(conn, tenant_id, limit, amount, key, certain, now)
    except _Refused as refused:
        if again and _release_stale(tenant_id, refused.counter, now):
            return _try_hold(tenant_id, limits, amount, key, certain, again=False)
        return refused.limit, refused.used, refused.settling
    return None


def _hold_one(conn: Connection, tenant_id: uuid.UUID, limit: Limit, amount: Decimal, key: str,
              certain: bool, now: datetime) -> None:
    counter = counters.counter_id(conn, tenant_id, counters.month_key(now), limit)
    taken = counters.take(conn, tenant_id, counter, key, amount, certain)
    if not taken.fresh:
        return  # a retried step's call: held when it first ran
    used = month_used(conn, tenant_id, limit.meter, now, limit.agent_id, limit.workflow_id)
    if used + taken.reserved_before >= limit.limit:
        definite = used + taken.reserved_before - taken.inflight_before
        raise _Refused(limit, counter, used, definite < limit.limit)


def _release_stale(tenant_id: uuid.UUID, counter: uuid.UUID, now: datetime) -> bool:
    with tenant_transaction(tenant_id) as conn:
        return counters.release_stale(conn, counter, now)


class _Refused(Exception):
    def __init__(self, limit: Limit, counter: uuid.UUID, used: Decimal,
                 settling: bool) -> None:
        self.limit, self.counter, self.used, self.settling = limit, counter, used, settling


def complete(tenant_id: uuid.UUID, key: str, actual: Decimal) -> None:
    """The call held under `key` returned and cost `actual`."""
    with tenant_transaction(tenant_id) as conn:
        counters.complete(conn, key, actual)


def release(tenant_id: uuid.UUID, keys: Iterable[str]) -> None:
    """Give holds back outside any transaction of the caller's (the call never ran)."""
    with tenant_transaction(tenant_id) as conn:
        counters.release(conn, list(keys))


def settle(keys: Iterable[str]) -> None:
    """In the transaction that records the calls' usage: their holds end, so what
    they held now shows as used; then the soft thresholds of those limits."""
    wanted = list(dict.fromkeys(keys))
    tenant_id = current_tenant_id()
    if not wanted or tenant_id is None:
        return
    conn = db.session.connection()
    settled = counters.release(conn, wanted)
    if settled:
        _alert(tenant_id, settled)


def _alert(tenant_id: uuid.UUID, settled: list[uuid.UUID]) -> None:
    rules = policy(tenant_id)
    if not rules.thresholds:
        return
    now = utcnow()
    rows = db.session.execute(select(counters.BudgetCounter.meter, counters.BudgetCounter.agent_id,
                                     counters.BudgetCounter.workflow_id)
                              .where(counters.BudgetCounter.id.in_(settled))).all()
    keys = {tuple(r) for r in rows}
    for limit in rules.limits:
        if limit.key in keys:
            used = month_used(db.session, tenant_id, limit.meter, now, limit.agent_id,
                              limit.workflow_id)
            soft_limits.check(tenant_id, limit, used, rules.thresholds, now)


def _amount(value: Decimal) -> str:
    return str(value.quantize(Decimal("0.01")))


def _count(value: Decimal) -> str:
    return str(int(value)) if value == value.to_integral_value() else str(value.normalize())


__all__ = ["MODEL_COST", "Policy", "admit_run", "complete", "hold", "policy", "settle"]
