"""The engine's pipelined transactions (platform/pipeline.py) keep the isolation
promise of the ORM session: the scope lasts one transaction, row-level security
applies, and a failing statement undoes its whole transaction (`-k isolation`)."""

from __future__ import annotations

import uuid

import pytest

from overture.platform import pipeline
from tests.conftest import APP_ROLE, PG_HOST

SECRET_STEP = "secret-step"


@pytest.fixture()
def app_url(database: str) -> str:
    return f"postgresql://{APP_ROLE}@{PG_HOST}/{database}"


def steps_seen(url: str, tenant_id: uuid.UUID | None) -> list[str]:
    sql = "SELECT step_id FROM step_runs WHERE step_id = %(s)s"
    if tenant_id is None:
        with pipeline.pipelined(url) as conn:
            cursor = conn.execute(sql, {"s": SECRET_STEP})
    else:
        with pipeline.transaction(url, tenant_id) as conn:
            cursor = conn.execute(sql, {"s": SECRET_STEP})
    return [r.step_id for r in cursor.fetchall()]


def test_isolation_pipeline_scope_ends_with_its_transaction(app_ctx, world, app_url):
    from tests.engine_support import publish, start

    a, b = world.tenants["a"].id, world.tenants["b"].id
    run_id = start(a, publish(a, {"steps": [{"id": "wait", "type": "delay", "seconds": 600}]}))
    insert = ("INSERT INTO step_runs (id, tenant_id, created_at, run_id, step_id, path,"
              " step_type, status, attempt, enqueued_at, tokens, cost, ends_block)"
              " VALUES (%(id)s, %(t)s, now(), %(r)s, %(s)s, 'x#0/', 'transform', 'queued', 0,"
              " now(), 0, 0, false)")
    with pipeline.transaction(app_url, a) as conn:
        conn.execute(insert, {"id": uuid.uuid4(), "t": a, "r": run_id, "s": SECRET_STEP})
    assert steps_seen(app_url, a) == [SECRET_STEP]
    assert steps_seen(app_url, b) == []  # another tenant's scope sees none of it
    assert steps_seen(app_url, None) == []  # the next transaction carries no scope over
    # B may not write A's rows
    with pytest.raises(pipeline.Declined), pipeline.transaction(app_url, b) as conn:
        conn.execute(insert, {"id": uuid.uuid4(), "t": a, "r": run_id, "s": SECRET_STEP})
    twice = uuid.uuid4()  # the second insert of it fails: the whole transaction is undone
    with pytest.raises(pipeline.Declined), pipeline.transaction(app_url, a) as conn:
        conn.execute(insert, {"id": uuid.uuid4(), "t": a, "r": run_id, "s": SECRET_STEP})
        conn.execute(insert, {"id": twice, "t": a, "r": run_id, "s": SECRET_STEP})
        conn.execute(insert, {"id": twice, "t": a, "r": run_id, "s": SECRET_STEP})  # fails
    assert steps_seen(app_url, a) == [SECRET_STEP]
    pipeline.close()


def test_isolation_pipeline_sends_nothing_of_a_block_that_raised(app_ctx, world, app_url):
    from tests.engine_support import publish, start

    a = world.tenants["a"].id
    run_id = start(a, publish(a, {"steps": [{"id": "wait", "type": "delay", "seconds": 600}]}))
    insert = ("INSERT INTO step_runs (id, tenant_id, created_at, run_id, step_id, path,"
              " step_type, status, attempt, enqueued_at, tokens, cost, ends_block)"
              " VALUES (%(id)s, %(t)s, now(), %(r)s, %(s)s, 'x#0/', 'transform', 'queued', 0,"
              " now(), 0, 0, false)")
    with pytest.raises(ZeroDivisionError), pipeline.transaction(app_url, a) as conn:
        conn.execute(insert, {"id": uuid.uuid4(), "t": a, "r": run_id, "s": SECRET_STEP})
        1 / 0  # noqa: B018
    assert steps_seen(app_url, a) == []
    pipeline.close()


def test_isolation_pipeline_a_lost_connection_declines_once_then_reconnects(
        app_ctx, world, app_url, database):
    from tests.conftest import admin_execute

    a = world.tenants["a"].id
    with pipeline.transaction(app_url, a) as conn:
        me = conn.execute("SELECT pg_backend_pid() AS pid, current_setting('app.tenant_id')"
                          " AS tenant")
    assert me.fetchone().tenant == str(a)
    admin_execute(f"SELECT pg_terminate_backend({me.fetchone().pid})")
    with pytest.raises(pipeline.Declined), pipeline.transaction(app_url, a) as conn:
        conn.execute("SELECT 1 AS one")
    with pipeline.transaction(app_url, a) as conn:
        again = conn.execute("SELECT pg_backend_pid() AS pid, %(x)s::int + 1 AS two", {"x": 1})
    row = again.fetchone()
    assert row.pid != me.fetchone().pid and row.two == 2
    pipeline.close()


def test_isolation_pipeline_a_big_batch_with_big_results_goes_through(app_ctx, world, app_url):
    """Megabytes out and megabytes back in one batch: while the request is still being
    written, the results already coming back must be read, or both sides wait."""
    import threading

    a = world.tenants["a"].id
    pad = "p" * 50_000
    rows: list[int] = []

    def big_batch() -> None:
        with pipeline.transaction(app_url, a) as conn:
            results = [conn.execute("SELECT length(repeat('x', 200000)) + length(%(pad)s)"
                                    " AS n, repeat('y', 200000) AS big", {"pad": pad})
                       for _ in range(150)]
        rows.extend(r.fetchone().n for r in results)
        pipeline.close()

    worker = threading.Thread(target=big_batch, daemon=True)
    worker.start()
    worker.join(timeout=60)
    assert not worker.is_alive(), "the batch is stuck"
    assert rows == [250_000] * 150
