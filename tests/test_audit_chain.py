"""The audit chain is tamper-evident and append-only (`-k audit`)."""

from __future__ import annotations

import contextvars
import json
import threading
import tracemalloc

import psycopg
import pytest
from click.testing import CliRunner
from flask.testing import FlaskClient

from overture.cli import main
from overture.platform import audit
from overture.platform.db import db, scoped_to
from tests.conftest import APP_ROLE, OWNER_ROLE, PG_ADMIN, PG_HOST
from tests.support import as_user


def write_events(tenant_id, n, action="test.event"):
    with scoped_to(tenant_id):
        for i in range(n):
            audit.record(action, target_type="thing", target_id=i, details={"i": i})
        db.session.commit()


def superuser(database):
    return psycopg.connect(PG_ADMIN.rsplit("/", 1)[0] + "/" + database, autocommit=True)


def tamper(database, tenant_id, sql, *params):
    """Edit the log behind the app's back, as a superuser who disabled the triggers."""
    with superuser(database) as conn:
        conn.execute("SET session_replication_role = replica")
        conn.execute(sql, (*params, tenant_id))


def run_verify(settings, *args):
    env = {"DATABASE_URL": settings.database_url, "DATABASE_OWNER_URL":
           settings.database_owner_url, "REDIS_URL": settings.redis_url or "",
           "SECRET_KEY": settings.secret_key, "OVERTURE_ENV": "test",
           "OVERTURE_INSTANCE_PATH": str(settings.instance_path),
           "OVERTURE_MASTER_KEY": settings.master_key or ""}
    return CliRunner().invoke(main, ["audit", "verify", *args], env=env)


def test_audit_app_role_cannot_update_or_delete(world, database):
    write_events(world.tenants["a"].id, 2)
    with psycopg.connect(f"postgresql://{APP_ROLE}@{PG_HOST}/{database}") as conn:
        conn.execute("SELECT set_config('app.tenant_id', %s, false)", (world.tid("a"),))
        for stmt in ("UPDATE audit_events SET action = 'forged'",
                     "DELETE FROM audit_events", "TRUNCATE audit_events"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(stmt)
            conn.rollback()
            conn.execute("SELECT set_config('app.tenant_id', %s, false)", (world.tid("a"),))


def test_audit_owner_is_refused_by_the_trigger(world, database):
    write_events(world.tenants["a"].id, 2)
    with psycopg.connect(f"postgresql://{OWNER_ROLE}@{PG_HOST}/{database}") as conn:
        conn.execute("SELECT set_config('app.tenant_id', %s, false)", (world.tid("a"),))
        for stmt in ("UPDATE audit_events SET action = 'forged'", "DELETE FROM audit_events",
                     "TRUNCATE audit_events"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
                conn.execute(stmt)
            conn.rollback()
            conn.execute("SELECT set_config('app.tenant_id', %s, false)", (world.tid("a"),))


def test_audit_verify_passes_an_untouched_log(world, settings):
    write_events(world.tenants["a"].id, 5)
    result = run_verify(settings)
    assert result.exit_code == 0, result.output
    assert "ws-a: ok" in result.output and "BROKEN" not in result.output


def test_audit_verify_names_the_exact_edited_event(world, settings, database):
    write_events(world.tenants["a"].id, 6)
    write_events(world.tenants["b"].id, 3)
    with scoped_to(world.tenants["a"].id):
        target = [e for e in audit.iter_events(audit.EventFilter(action_prefix="test."))][3]
    seq = target.seq
    tamper(database, world.tid("a"),
           "UPDATE audit_events SET details = '{\"i\": 999}' WHERE seq = %s AND tenant_id = %s",
           seq)
    result = run_verify(settings)
    assert result.exit_code != 0
    assert f"ws-a: BROKEN at seq {seq}: event altered" in result.output
    assert "ws-b: ok" in result.output
    only_b = run_verify(settings, "--tenant", "ws-b")
    assert only_b.exit_code == 0 and "ws-a" not in only_b.output


def test_audit_verify_catches_a_deleted_event_and_a_cut_tail(world, settings, database):
    write_events(world.tenants["a"].id, 6)
    with scoped_to(world.tenants["a"].id):
        seqs = [e.seq for e in audit.iter_events(audit.EventFilter(action_prefix="test."))]
    tamper(database, world.tid("a"),
           "DELETE FROM audit_events WHERE seq = %s AND tenant_id = %s", seqs[2])
    result = run_verify(settings, "--tenant", "ws-a")
    assert f"BROKEN at seq {seqs[2]}" in result.output and result.exit_code != 0

    write_events(world.tenants["b"].id, 4)
    with scoped_to(world.tenants["b"].id):
        last = max(e.seq for e in audit.iter_events(audit.EventFilter()))
    tamper(database, world.tid("b"),
           "DELETE FROM audit_events WHERE seq = %s AND tenant_id = %s", last)
    result = run_verify(settings, "--tenant", "ws-b")
    assert f"BROKEN at seq {last}" in result.output and result.exit_code != 0


def test_audit_verify_unknown_tenant_is_a_clear_error(world, settings):
    result = run_verify(settings, "--tenant", "no-such-tenant")
    assert result.exit_code != 0 and "no tenant with slug" in result.output


def test_audit_eight_concurrent_writers_keep_one_valid_chain(app, world):
    tenant_id = world.tenants["a"].id
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def writer() -> None:
        try:
            with app.app_context():
                start.wait()
                for i in range(25):
                    with scoped_to(tenant_id):
                        audit.record("test.concurrent", details={"i": i})
                        db.session.commit()
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=contextvars.Context().run, args=(writer,))
               for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    with scoped_to(tenant_id):
        report = audit.verify_chain()
        written = audit.list_events(audit.EventFilter(action_prefix="test.concurrent"),
                                    None, 200)[0]
    assert report.ok, report
    assert len(written) == 200


def bulk_events(database, tenant_id, n):
    """n chained events written straight into the table (fast), as the app would."""
    from datetime import UTC, datetime, timedelta

    from overture.platform.ids import new_id

    with superuser(database) as conn:
        row = conn.execute("SELECT last_seq, last_hash FROM audit_heads WHERE tenant_id = %s",
                           (tenant_id,)).fetchone()
        seq, prev = row if row else (0, audit.GENESIS)
        base = datetime.now(UTC)
        with conn.cursor().copy(
                "COPY audit_events (id, tenant_id, seq, occurred_at, actor_type, action, "
                "details, prev_hash, hash, created_at) FROM STDIN") as copy:
            for i in range(n):
                seq += 1
                event = audit.AuditEvent(tenant_id=tenant_id, seq=seq,
                                         occurred_at=base + timedelta(microseconds=i),
                                         actor_type="system", action="bulk.event",
                                         details={"i": i, "note": "x" * 200})
                event.hash = audit.chain_hash(prev, event)
                copy.write_row((new_id(), tenant_id, seq, event.occurred_at, "system",
                                "bulk.event", json.dumps({"i": i, "note": "x" * 200}),
                                prev, event.hash, base))
                prev = event.hash
        conn.execute("INSERT INTO audit_heads (id, tenant_id, last_seq, last_hash, created_at) "
                     "VALUES (%s, %s, %s, %s, now()) ON CONFLICT (tenant_id) DO UPDATE "
                     "SET last_seq = EXCLUDED.last_seq, last_hash = EXCLUDED.last_hash",
                     (new_id(), tenant_id, seq, prev))


def export_peak(app, world, handle):
    """Stream an export and return (lines, peak bytes allocated while streaming)."""
    auditor = as_user(app, world, handle)

    def stream():
        # FlaskClient.open directly: this context both sends and reads the stream.
        response = FlaskClient.open(auditor.client,
                                    "/api/v1/audit/export?format=jsonl&action=bulk.",
                                    headers=auditor.headers(None), buffered=False)
        tracemalloc.start()
        lines = sum(chunk.count(b"\n") for chunk in response.response)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        response.close()
        return lines, peak

    return contextvars.Context().run(stream)


def test_audit_export_of_10000_events_streams_with_flat_memory(app, world, database):
    bulk_events(database, world.tid("a"), 2_000)
    bulk_events(database, world.tid("b"), 10_000)
    small_lines, small_peak = export_peak(app, world, "a_admin")
    big_lines, big_peak = export_peak(app, world, "b_admin")
    assert (small_lines, big_lines) == (2_000, 10_000)
    # Five times the events may not take anything like five times the memory.
    assert big_peak < 1.5 * small_peak, (small_peak, big_peak)
    with scoped_to(world.tenants["b"].id):
        assert audit.verify_chain().ok
