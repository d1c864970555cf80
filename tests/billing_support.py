"""Helpers for the metering tests: running steps in this process with every message
delivered twice, and reading meters from the raw events and from the roll-ups."""

from __future__ import annotations

import time
from collections import defaultdict
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import func, select

from overture.billing.rollups import NONE, UsageDaily, UsageHourly, day_of, hour_of
from overture.billing.usage import UsageEvent
from overture.orchestration import dispatch, engine
from overture.platform.db import db, scoped_to
from tests.engine_support import Receiver


class Inbox:
    """The app's step messages, caught instead of sent to Redis, to process here."""

    def __init__(self, app: Any, monkeypatch: Any) -> None:
        self.sent: list[tuple[Any, ...]] = []
        monkeypatch.setitem(app.extensions, dispatch.SENDER, lambda *m: self.sent.append(m))

    def drain(self, copies: int = 1, limit: int = 500) -> int:
        """Process every message (and those they send) until none is left, each one
        `copies` times, as a broker that redelivers would; how many were handled."""
        handled = 0
        while self.sent:
            step_run_id, tenant_id, delay_ms = self.sent.pop(0)
            if delay_ms:
                time.sleep(delay_ms / 1000)
            for _ in range(copies):
                engine.process(step_run_id, tenant_id)
            handled += 1
            assert handled < limit, "messages never stop coming"
        return handled


def events_of(tenant_id: Any, **where: Any) -> list[SimpleNamespace]:
    """The tenant's raw events matching `where`, as plain values."""
    with scoped_to(tenant_id):
        stmt = select(UsageEvent).filter_by(**where).order_by(UsageEvent.created_at)
        rows = [SimpleNamespace(**{c.key: getattr(e, c.key) for c in UsageEvent.__table__.columns})
                for e in db.session.scalars(stmt)]
        db.session.rollback()
    return rows


def raw(tenant_id: Any, grain: str | None = None) -> dict[tuple[Any, ...], Decimal]:
    """Per meter, dimension, agent and workflow (and UTC hour or day, with a `grain`):
    the sum of the raw events, added up here."""
    with scoped_to(tenant_id):
        rows = db.session.execute(
            select(UsageEvent.metric, UsageEvent.dimension, UsageEvent.agent_id,
                   UsageEvent.workflow_id, UsageEvent.created_at, UsageEvent.quantity)).all()
        db.session.rollback()
    sums: dict[tuple[Any, ...], Decimal] = defaultdict(Decimal)
    for meter, dimension, agent, workflow, at, quantity in rows:
        key: tuple[Any, ...] = (meter, dimension, agent or NONE, workflow or NONE)
        if grain:
            key += (hour_of(at) if grain == "hour" else day_of(at),)
        sums[key] += Decimal(quantity)
    return dict(sums)


def rolled(tenant_id: Any, model: Any, by_bucket: bool = False) -> dict[tuple[Any, ...], Decimal]:
    """The same sums, from the hourly or the daily roll-ups (their slots added up)."""
    columns = [model.meter, model.dimension, model.agent_id, model.workflow_id]
    if by_bucket:
        columns.append(model.bucket)
    with scoped_to(tenant_id):
        rows = db.session.execute(select(*columns, func.sum(model.quantity))
                                  .group_by(*columns)).all()
        db.session.rollback()
    return {tuple(key): Decimal(quantity) for *key, quantity in rows}


def meters(tenant_id: Any) -> dict[str, Decimal]:
    """Per meter, from the roll-ups, after checking that the hourly and the daily
    roll-ups both hold exactly what the raw events add up to, hour by hour and day by
    day."""
    assert rolled(tenant_id, UsageHourly, by_bucket=True) == raw(tenant_id, "hour")
    assert rolled(tenant_id, UsageDaily, by_bucket=True) == raw(tenant_id, "day")
    events = raw(tenant_id)
    assert rolled(tenant_id, UsageHourly) == events == rolled(tenant_id, UsageDaily)
    totals: dict[str, Decimal] = defaultdict(Decimal)
    for (meter, *_), quantity in events.items():
        totals[meter] += quantity
    return dict(totals)


# Fixtures (a plugin of the root conftest) for tests that run steps in-process against
# a local receiver; a module's own fixture of the same name wins over these.

@pytest.fixture
def loopback_allowed(monkeypatch):
    """The local receiver is on loopback, which the outbound guard refuses by default."""
    monkeypatch.setenv("OVERTURE_OUTBOUND_ALLOWLIST", "127.0.0.0/8")


@pytest.fixture
def inbox(app_ctx, monkeypatch):
    return Inbox(app_ctx, monkeypatch)


@pytest.fixture
def receiver():
    with Receiver() as server:
        yield server
