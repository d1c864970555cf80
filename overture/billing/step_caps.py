"""Caps on steps, checked as each step starts, for next to nothing per step.

A cap on `steps` (the workspace's, or one workflow's) lets a step start while fewer
than its limit have started this calendar month (UTC). The cap's counter row
(`budget_counters`, one per tenant, month and cap) keeps `admitted`: the steps it let
start this month. Counting each step on that row would put every step of a busy
workspace in line for its lock; instead each process takes an *allowance* from it, in a
short transaction under the row's lock, and lets its steps start from that, in memory:

- an allowance is a 64th of what is left, at most 200 steps and at least 1: far from the
  limit a process comes back once per 200 steps; near it, once per step, so that however
  many processes race, exactly `limit` steps start (the row's lock orders them);
- what is left is the limit less the larger of `admitted` and the month's metered steps
  (`reports.month_used`), so that a cap set in the middle of a month counts the steps
  that ran before it;
- what a process did not use it gives back when it stops (`give_back`), or when the
  cap's value changed (with its next refill: an allowance counts under the value it was
  taken for); an allowance lost with a process that died stays counted, so the cap can
  stop at most that many steps early, never late. A cap removed keeps its count for
  the month, in case it comes back.

A step counts once, on its first attempt: a retry, a delay that comes back, a step run
again after its worker died were let in already. A step the cap refuses fails before it
runs with `budget_exceeded` (its problem `quota-exceeded`, naming the cap), which its
error route can catch; it did nothing, so it is not metered.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from overture.billing import counters, enforce
from overture.billing.budgets import Limit
from overture.billing.meters import STEPS
from overture.billing.reports import month_used
from overture.platform.db import tenant_transaction, utcnow
from overture.platform.errors import PaymentRequired

MOST = 200  # steps an allowance holds at most
SHARE = 64  # an allowance is at most this fraction of what the cap has left


@dataclass
class _Allowance:
    tenant_id: uuid.UUID
    counter_id: uuid.UUID
    limit: Decimal  # the cap's value it was taken under: a changed cap takes a new one
    left: int


# by (tenant id as an int, month, the limit's ident): keys that hash without a Python call
_allowances: dict[tuple[int, str, str], _Allowance] = {}
_refilling: dict[tuple[int, str, str], threading.Lock] = {}
_lock = threading.Lock()
_month: tuple[float, str] = (0.0, "")  # until when (time.time()), the month


def capped(tenant_id: uuid.UUID, workflow_id: uuid.UUID | None) -> list[Limit]:
    """The caps on steps that apply to a step of `workflow_id` (as this process last
    read the tenant's limits: a dictionary lookup)."""
    return enforce.policy(tenant_id).applying(STEPS, None, workflow_id)


def admit(tenant_id: uuid.UUID, limits: list[Limit], now: datetime | None = None) -> None:
    """Let one step start under every cap of `limits`, or none: raises the 402 problem
    (`QuotaExceeded`) of a cap it would pass."""
    month = counters.month_key(now) if now is not None else _this_month()
    with _lock:  # the common case: this process holds an allowance of each
        found = [_allowances.get((tenant_id.int, month, limit.ident)) for limit in limits]
        for allowance, limit in zip(found, limits, strict=True):
            if allowance is None or allowance.left <= 0 or allowance.limit != limit.limit:
                break
        else:
            for allowance in found:
                allowance.left -= 1  # type: ignore[union-attr]
            return
    taken: list[Limit] = []
    try:
        for limit in limits:
            _take(tenant_id, limit, month, now)
            taken.append(limit)
    except PaymentRequired:
        with _lock:
            for limit in taken:
                _allowances[(tenant_id.int, month, limit.ident)].left += 1
        raise


def _this_month() -> str:
    """The month now, UTC ("2026-12"), read from the clock once per minute at most."""
    global _month
    now = time.time()
    if now >= _month[0]:
        _month = (now + 60 - now % 60, counters.month_key(utcnow()))
    return _month[1]


def _take(tenant_id: uuid.UUID, limit: Limit, month: str, now: datetime | None) -> None:
    key = (tenant_id.int, month, limit.ident)
    with _lock:
        refilling = _refilling.setdefault(key, threading.Lock())
    with refilling:  # one refill of a cap at a time here: the row's lock orders them anyway
        with _lock:
            found = _allowances.get(key)
            if found is not None and found.left > 0 and found.limit == limit.limit:
                found.left -= 1  # another thread just refilled it
                return
            stale = 0  # taken under the cap's former value: given back with this refill
            if found is not None and found.limit != limit.limit:
                stale, found.left = found.left, 0
        try:
            counter_id, granted = _refill(tenant_id, limit, month, now or utcnow(), stale)
        except BaseException:
            if found is not None:
                with _lock:
                    found.left += stale
            raise
        with _lock:
            found = _allowances.setdefault(key, _Allowance(tenant_id, counter_id, limit.limit, 0))
            found.counter_id, found.limit = counter_id, limit.limit
            found.left += granted - 1


def _refill(tenant_id: uuid.UUID, limit: Limit, month: str, now: datetime,
            stale: int = 0) -> tuple[uuid.UUID, int]:
    """Take an allowance from the cap's counter under its row lock, giving back `stale`
    steps of a former one; refused when none is left."""
    with tenant_transaction(tenant_id) as conn:
        counter_id, admitted = counters.admitting(conn, tenant_id, month, limit)
        admitted -= stale
        used = month_used(conn, tenant_id, STEPS, now, None, limit.workflow_id)
        base = max(admitted, used)
        left = limit.limit - base
        if left <= 0:
            raise enforce.refusal(limit, base)
        granted = int(max(Decimal(1), min(Decimal(MOST), left // SHARE)))
        counters.set_admitted(conn, counter_id, base + granted)
    return counter_id, granted


def give_back() -> None:
    """Give the counters what this process took and did not use (when it stops)."""
    with _lock:
        unused = [a for a in _allowances.values() if a.left > 0]
        _allowances.clear()
    for allowance in unused:
        with tenant_transaction(allowance.tenant_id) as conn:
            counters.set_admitted(conn, allowance.counter_id, -Decimal(allowance.left),
                                  relative=True)


def forget() -> None:
    """Drop this process's allowances without giving them back (tests)."""
    with _lock:
        _allowances.clear()
