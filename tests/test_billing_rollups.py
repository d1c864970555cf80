"""Roll-ups (`-k billing`): for any events (hypothesis), with repeated keys among them,
the hourly and daily roll-ups hold exactly what the raw events add up to, a report of
any period equals the sum of the events in it, a month's total is the month's events,
and a rebuild from the events (`overture billing rollup --rebuild`) changes nothing,
however often it runs. On PostgreSQL, and on SQLite (the embedded mode)."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete

from overture.billing import periods, reports, usage
from overture.billing.rebuild import rebuild
from overture.billing.rollups import UsageDaily, UsageHourly
from overture.billing.usage import UsageEvent
from overture.cli import main
from overture.platform.db import db, scoped_to
from tests.billing_support import meters
from tests.conftest import pg_env

START = datetime(2026, 11, 29, 20, tzinfo=UTC)  # three days across a month's end
AGENTS = [None, uuid.UUID(int=7), uuid.UUID(int=8)]
WORKFLOWS = [None, uuid.UUID(int=70)]

EVENT = st.fixed_dictionaries({
    "meter": st.sampled_from(["steps", "llm_cost", "knowledge_bytes"]),
    "quantity": st.decimals(min_value=-1000, max_value=10_000, places=6),
    "dimension": st.sampled_from(["", "openai:gpt-4o", "anthropic:claude"]),
    "agent_id": st.sampled_from(AGENTS),
    "workflow_id": st.sampled_from(WORKFLOWS),
    "minutes": st.integers(min_value=0, max_value=3 * 24 * 60 - 1),
    "key": st.one_of(st.none(), st.sampled_from(["k1", "k2", "k3"])),
})
PERIOD = st.tuples(st.integers(0, 71), st.integers(1, 72))


def write(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Record the events one by one, as separate writes do; those that were new."""
    kept = []
    for e in events:
        at = START + timedelta(minutes=e["minutes"])
        entry = usage.Entry(e["meter"], e["quantity"], e["dimension"], e["agent_id"])
        if usage.record([entry], attribution=usage.Attribution(workflow_id=e["workflow_id"]),
                        key=e["key"], at=at):
            kept.append({**e, "at": at})
    db.session.commit()
    return kept


def expected(kept: list[dict[str, Any]], period: periods.Period) -> dict[tuple[Any, ...], Decimal]:
    sums: dict[tuple[Any, ...], Decimal] = defaultdict(Decimal)
    for e in kept:
        if period.since <= e["at"] < period.until:
            sums[(e["meter"], e["agent_id"], e["at"].date())] += e["quantity"]
    return {k: v for k, v in sums.items()}


def check(events: list[dict[str, Any]], bounds: tuple[int, int]) -> None:
    kept = write(events)
    first, length = bounds
    period = periods.Period(START + timedelta(hours=first),
                            START + timedelta(hours=min(first + length, 72)))
    if period.since >= period.until:
        period = periods.Period(period.since, period.since + timedelta(hours=1))
    lines = reports.summary(period, {"agent", "day"})
    found = {(line.meter, line.agent_id, line.day): line.quantity for line in lines}
    want = expected(kept, period)
    assert {k: v for k, v in found.items() if v or k in want} == want
    for at in (START, START + timedelta(days=2)):
        month = sum((e["quantity"] for e in kept if e["meter"] == "llm_cost"
                     and (e["at"].year, e["at"].month) == (at.year, at.month)), Decimal(0))
        assert reports.month_total("llm_cost", at) == month
    before = reports.summary(periods.Period(START, START + timedelta(hours=72)),
                             {"agent", "workflow", "dimension", "day"})
    for _ in range(2):  # idempotent
        assert rebuild() == len(kept)
        db.session.commit()
        assert reports.summary(periods.Period(START, START + timedelta(hours=72)),
                               {"agent", "workflow", "dimension", "day"}) == before


def clear() -> None:
    for model in (UsageEvent, UsageHourly, UsageDaily):
        db.session.execute(delete(model))
    db.session.commit()


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(events=st.lists(EVENT, max_size=25), bounds=PERIOD)
def test_billing_rollups_equal_the_events_on_postgresql(app_ctx, world, events, bounds):
    a = world.tenants["a"].id
    with scoped_to(a):
        clear()
        check(events, bounds)
    meters(a)  # every group of the roll-ups equals its events
    assert meters(world.tenants["b"].id) == {}


@pytest.fixture(scope="module")
def sqlite_app(tmp_path_factory) -> Iterator[Any]:
    from flask import Flask

    from overture.platform import migrate
    from overture.platform.config import load_settings
    from overture.tenants.lifecycle import create_tenant
    from overture.tenants.models import TenantKind

    folder = tmp_path_factory.mktemp("sqlite-usage")
    settings_ = load_settings({"OVERTURE_INSTANCE_PATH": str(folder), "OVERTURE_ENV": "test"})
    migrate.upgrade(settings_)
    app = Flask("sqlite-usage")
    app.config["SQLALCHEMY_DATABASE_URI"] = settings_.database_url
    db.init_app(app)
    with app.app_context():
        tenant = create_tenant("Solo", TenantKind.WORKSPACE, None, slug="solo")
        db.session.commit()
        app.config["tenant_id"] = tenant.id
        yield app
        db.session.remove()


@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(events=st.lists(EVENT, max_size=15), bounds=PERIOD)
def test_billing_rollups_equal_the_events_on_sqlite(sqlite_app, events, bounds):
    with scoped_to(sqlite_app.config["tenant_id"]):
        clear()
        check(events, bounds)


def test_billing_rollup_rebuild_command_fills_rollups_from_events_written_before(
        app_ctx, world, database):
    """Events from before the roll-ups (written without them), rebuilt by the command,
    for every tenant; twice gives the same."""
    a, b = world.tenants["a"].id, world.tenants["b"].id
    for tenant_id, quantity in ((a, 5), (b, 7)):
        with scoped_to(tenant_id):
            db.session.add(UsageEvent(metric="steps", quantity=Decimal(quantity)))
            db.session.add(UsageEvent(metric="llm_cost", quantity=Decimal("0.25"),
                                      dimension="openai:gpt-4o"))
            usage.record_usage("steps", 1)  # one that has its roll-ups already
            db.session.commit()
    runner = CliRunner()
    for _ in range(2):
        result = runner.invoke(main, ["billing", "rollup", "--rebuild"], env=pg_env(database))
        assert result.exit_code == 0, result.output
        assert meters(a) == {"steps": 6, "llm_cost": Decimal("0.25")}
        assert meters(b) == {"steps": 8, "llm_cost": Decimal("0.25")}
    assert "ws-a: 3 events" in result.output
    result = runner.invoke(main, ["billing", "rollup"], env=pg_env(database))
    assert result.exit_code != 0 and "--rebuild" in result.output


def test_billing_migration_moves_connector_calls_to_their_dimension():
    """Action calls stored before 0026 named "connector.action" in step_id: the upgrade
    moves the connector to the dimension (under row-level security, as the owner)."""
    import psycopg

    from overture.platform import migrate
    from tests.conftest import create_database, drop_database, pg_settings

    name = create_database("overture_meter_migr")
    try:
        settings = pg_settings(name)
        migrate.upgrade(settings, "0022")
        tenant = uuid.uuid4()
        with psycopg.connect(settings.database_owner_url.replace("+psycopg", "")) as conn:
            conn.execute("SELECT set_config('app.tenant_id', %s, false)", (str(tenant),))
            for metric, step_id in (("action_calls", "slack.post_message"),
                                    ("steps", "charge")):
                conn.execute("INSERT INTO usage_events (id, tenant_id, created_at, metric, "
                             "quantity, step_id) VALUES (%s, %s, now(), %s, 1, %s)",
                             (uuid.uuid4(), tenant, metric, step_id))
        migrate.upgrade(settings)
        with psycopg.connect(settings.database_owner_url.replace("+psycopg", "")) as conn:
            conn.execute("SELECT set_config('app.tenant_id', %s, false)", (str(tenant),))
            rows = sorted(conn.execute("SELECT metric, dimension, step_id FROM usage_events"))
        assert rows == [("action_calls", "slack", None), ("steps", "", "charge")]
    finally:
        drop_database(name)
