"""The audit chains' heads are sealed outside the database (`-k audit`): whoever owns
the table can rewrite a chain so that it still hashes, but not the checkpoints."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner
from psycopg.types.json import Json
from sqlalchemy import select

from overture.cli import main
from overture.orchestration import scheduler
from overture.platform import audit, audit_seal, crypto
from overture.platform.db import db, scoped_to
from tests.engine_support import ROOT, publish, running_workers, settings_env, start, wait_for
from tests.support import as_user
from tests.test_audit_chain import superuser, write_events
from tests.vault_support import restored_broker


def overture(settings, *args, **env):
    """`overture ARGS` on the suite's database, in this process."""
    base = {"DATABASE_URL": settings.database_url, "REDIS_URL": settings.redis_url or "",
            "DATABASE_OWNER_URL": settings.database_owner_url, "OVERTURE_ENV": "test",
            "SECRET_KEY": settings.secret_key, "OVERTURE_LOG_LEVEL": "WARNING",
            "OVERTURE_INSTANCE_PATH": str(settings.instance_path), "OVERTURE_AUDIT_KEY": "",
            "OVERTURE_MASTER_KEY": settings.master_key or ""}
    with restored_broker():
        return CliRunner().invoke(main, list(args), env={**base, **env})


def checkpoint(settings, **env):
    result = overture(settings, "audit", "checkpoint", **env)
    assert result.exit_code == 0, result.output
    return result


def head(tenant_id):
    with scoped_to(tenant_id):
        row = db.session.scalars(select(audit.AuditHead)).one()
        seq, last_hash = row.last_seq, row.last_hash
        db.session.rollback()
    return seq, last_hash


def rewrite_chain(database, tenant_id, seq, details):
    """The attack: as a superuser with the triggers off, alter event `seq` and recompute
    every later hash and the head, so that the chain hashes again."""
    with scoped_to(tenant_id):
        events = list(db.session.scalars(select(audit.AuditEvent)
                                         .where(audit.AuditEvent.seq >= seq)
                                         .order_by(audit.AuditEvent.seq)))
        db.session.expunge_all()
        db.session.rollback()
    events[0].details = details
    prev = events[0].prev_hash
    for event in events:
        event.prev_hash, event.hash = prev, audit.chain_hash(prev, event)
        prev = event.hash
    with superuser(database) as conn:
        conn.execute("SET session_replication_role = replica")
        for event in events:
            conn.execute("UPDATE audit_events SET details = %s, prev_hash = %s, hash = %s "
                         "WHERE tenant_id = %s AND seq = %s",
                         (Json(event.details), event.prev_hash, event.hash, tenant_id,
                          event.seq))
        conn.execute("UPDATE audit_heads SET last_hash = %s WHERE tenant_id = %s",
                     (prev, tenant_id))


def cut_tail(database, tenant_id, keep):
    """Delete the events after seq `keep` and point the head back at `keep`."""
    with superuser(database) as conn:
        conn.execute("SET session_replication_role = replica")
        conn.execute("DELETE FROM audit_events WHERE tenant_id = %s AND seq > %s",
                     (tenant_id, keep))
        conn.execute("UPDATE audit_heads SET last_seq = %s, last_hash = (SELECT hash FROM "
                     "audit_events WHERE tenant_id = %s AND seq = %s) WHERE tenant_id = %s",
                     (keep, tenant_id, keep, tenant_id))


def plain_chain_ok(tenant_id):
    """What `audit verify` checked before the seals: the chain's own hashes."""
    with scoped_to(tenant_id):
        report = audit.verify_chain()
        db.session.rollback()
    return report.ok


def records(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def key_entry(kid):
    return crypto.format_entry(kid, crypto.new_key())


# --------------------------------------------------------------------------- attacks


def test_audit_seal_catches_a_rewritten_chain_that_still_hashes(world, settings, database):
    a = world.tenants["a"].id
    write_events(a, 4)
    write_events(world.tenants["b"].id, 3)
    checkpoint(settings)
    first_sealed, _ = head(a)
    write_events(a, 4)
    checkpoint(settings)
    last_sealed, _ = head(a)
    before = overture(settings, "audit", "verify")
    assert before.exit_code == 0, before.output
    assert f"ws-a: ok ({last_sealed} events, sealed up to seq {last_sealed} at" in before.output

    rewrite_chain(database, a, first_sealed + 2, {"i": "forged"})
    assert plain_chain_ok(a), "the rewritten chain hashes: the old check passes"

    after = overture(settings, "audit", "verify")
    assert after.exit_code != 0
    assert (f"ws-a: BROKEN at seq {last_sealed}: chain rewritten: seq {last_sealed} no "
            "longer has the hash sealed at") in after.output
    assert f"an event in seqs {first_sealed + 1}-{last_sealed} was altered" in after.output
    assert "ws-b: ok" in after.output


def test_audit_seal_catches_a_cut_tail_even_when_chained_again(world, settings, database):
    a = world.tenants["a"].id
    write_events(a, 5)
    checkpoint(settings)
    sealed, _ = head(a)

    cut_tail(database, a, sealed - 2)
    assert plain_chain_ok(a), "the shortened chain hashes: the old check passes"
    cut = overture(settings, "audit", "verify", "--tenant", "ws-a")
    assert cut.exit_code != 0
    assert (f"ws-a: BROKEN at seq {sealed - 1}: events deleted: the chain ends at seq "
            f"{sealed - 2} but seq {sealed} was sealed at") in cut.output

    write_events(a, 2)  # the app writes on: the chain grows back past the sealed seq
    assert head(a)[0] == sealed and plain_chain_ok(a)
    regrown = overture(settings, "audit", "verify", "--tenant", "ws-a")
    assert regrown.exit_code != 0
    assert f"ws-a: BROKEN at seq {sealed}: chain rewritten" in regrown.output


def test_audit_seal_catches_a_tenant_deleted_with_its_chain(world, settings, database):
    c = world.tenants["c"].id
    write_events(c, 2)
    checkpoint(settings)
    sealed, _ = head(c)
    with superuser(database) as conn:
        conn.execute("SET session_replication_role = replica")
        for table in ("audit_events", "audit_heads"):
            conn.execute(f"DELETE FROM {table} WHERE tenant_id = %s", (c,))
        conn.execute("DELETE FROM tenants WHERE id = %s", (c,))
    result = overture(settings, "audit", "verify")
    assert result.exit_code != 0
    assert (f"tenant {c}: BROKEN at seq 1: sealed up to seq {sealed} at") in result.output
    assert "the tenant and its chain are gone" in result.output


def test_audit_seal_catches_an_edited_checkpoint_file(world, settings):
    a = world.tenants["a"].id
    path = settings.audit_checkpoint_path
    for _ in range(3):
        write_events(a, 1)
        checkpoint(settings)
    original = path.read_text().splitlines(keepends=True)
    assert len(original) == 3 and overture(settings, "audit", "verify").exit_code == 0

    def verify_with(lines):
        path.write_text("".join(lines))
        result = overture(settings, "audit", "verify")
        assert result.exit_code != 0, result.output
        return result.output

    forged = json.loads(original[1])
    forged["heads"][0]["seq"] += 1
    assert f"{path}:2: its MAC does not verify" in verify_with(
        [original[0], json.dumps(forged) + "\n", original[2]])
    assert f"{path}:2: does not follow the record before it" in verify_with(
        [original[0], original[2]])
    assert f"{path}:1: is not the first checkpoint: earlier ones were cut" in verify_with(
        original[1:])
    assert f"{path}:4: not a checkpoint record" in verify_with([*original, "{oops\n"])
    # ...and the sealer will not chain onto a damaged file.
    refused = overture(settings, "audit", "checkpoint")
    assert refused.exit_code != 0 and "ends in a line that is not a checkpoint" in refused.output


def test_audit_seal_refuses_checkpoints_sealed_with_another_key(world, settings):
    write_events(world.tenants["a"].id, 2)
    checkpoint(settings, OVERTURE_AUDIT_KEY=key_entry("rogue"))
    result = overture(settings, "audit", "verify")
    assert result.exit_code != 0
    assert ":1: sealed with audit key 'rogue', which is not one of this installation's" \
        in result.output

    # The same key id with other key material: the MAC tells them apart.
    settings.audit_checkpoint_path.unlink()
    checkpoint(settings, OVERTURE_AUDIT_KEY=key_entry("k1"))
    result = overture(settings, "audit", "verify", OVERTURE_AUDIT_KEY=key_entry("k1"))
    assert result.exit_code != 0 and ":1: its MAC does not verify" in result.output


def test_audit_seal_key_rotation_keeps_old_checkpoints_verifiable(world, settings):
    a = world.tenants["a"].id
    k1, k2 = key_entry("k1"), key_entry("k2")
    write_events(a, 2)
    checkpoint(settings)  # under the key derived from the master key
    write_events(a, 2)
    checkpoint(settings, OVERTURE_AUDIT_KEY=k1)
    write_events(a, 2)
    checkpoint(settings, OVERTURE_AUDIT_KEY=f"{k2},{k1}")  # k2 first: it seals now
    master_kid = "master." + crypto.load_keyring(settings).primary.kid
    assert [r["kid"] for r in records(settings.audit_checkpoint_path)] == \
        [master_kid, "k1", "k2"]

    rotated = overture(settings, "audit", "verify", OVERTURE_AUDIT_KEY=f"{k2},{k1}")
    assert rotated.exit_code == 0, rotated.output
    assert f"ws-a: ok ({head(a)[0]} events, sealed up to seq {head(a)[0]}" in rotated.output

    # Old checkpoints are really checked: drop k1 and its records are refused.
    dropped = overture(settings, "audit", "verify", OVERTURE_AUDIT_KEY=k2)
    assert dropped.exit_code != 0 and ":2: sealed with audit key 'k1'" in dropped.output


def test_audit_seal_bad_settings_are_clear_errors(settings):
    short = overture(settings, "audit", "verify", OVERTURE_AUDIT_KEY="k1:c2hvcnQ")
    assert short.exit_code != 0
    assert "OVERTURE_AUDIT_KEY: audit key 'k1' must be 32 random bytes" in short.output
    taken = overture(settings, "audit", "checkpoint", OVERTURE_AUDIT_KEY=key_entry(
        "master." + crypto.load_keyring(settings).primary.kid))
    assert taken.exit_code != 0 and "is taken by the key derived" in taken.output
    never = overture(settings, "audit", "checkpoint", OVERTURE_AUDIT_CHECKPOINT_SECONDS="0")
    assert never.exit_code != 0
    assert "OVERTURE_AUDIT_CHECKPOINT_SECONDS must be a positive number" in never.output
    assert "Traceback" not in short.output + taken.output + never.output


# --------------------------------------------------------------------------- writing


@pytest.fixture
def checkpoint_clock(monkeypatch):
    """A fresh clock and sealer, so other tests' rounds do not decide what is due."""
    fresh = scheduler.Periodic(interval=scheduler.AUDIT_CHECKPOINT.interval)
    monkeypatch.setattr(scheduler, "AUDIT_CHECKPOINT", fresh)
    monkeypatch.setattr(scheduler, "AUDIT_SEALER", audit_seal.HeadSealer())
    return fresh


def test_audit_seal_scheduler_rounds_seal_the_heads_that_moved(app, world, settings,
                                                               checkpoint_clock):
    a, b = world.tenants["a"].id, world.tenants["b"].id
    write_events(a, 2)
    write_events(b, 2)
    path = settings.audit_checkpoint_path
    scheduler.one_round(app)
    [first] = records(path)
    sealed = {h["tenant"]: (h["seq"], h["hash"]) for h in first["heads"]}
    assert sealed[str(a)] == head(a) and sealed[str(b)] == head(b)

    write_events(a, 1)
    scheduler.one_round(app)  # within the interval: nothing new
    assert len(records(path)) == 1
    checkpoint_clock.last -= checkpoint_clock.interval
    scheduler.one_round(app)
    moved = records(path)[1]
    assert [(h["tenant"], h["seq"], h["hash"]) for h in moved["heads"]] == [(str(a), *head(a))]
    assert moved["prev"] == first["mac"]
    checkpoint_clock.last -= checkpoint_clock.interval
    scheduler.one_round(app)
    assert records(path)[2]["heads"] == []  # nothing moved: the sealer was alive

    result = overture(settings, "audit", "verify")
    assert result.exit_code == 0, result.output
    assert f"ws-a: ok ({head(a)[0]} events, sealed up to seq {head(a)[0]}" in result.output


def test_audit_seal_scheduler_process_writes_the_file_and_the_log(world, settings, tmp_path):
    a = world.tenants["a"].id
    write_events(a, 2)
    path, log_path = settings.audit_checkpoint_path, tmp_path / "scheduler.log"

    def sealed_heads():
        if not path.exists():
            return set()
        return {(h["tenant"], h["seq"]) for r in records(path) for h in r["heads"]}

    def wait_until_sealed(seq):
        deadline = time.monotonic() + 30
        while (str(a), seq) not in sealed_heads():
            assert time.monotonic() < deadline, f"seq {seq} never sealed"
            time.sleep(0.1)

    env = settings_env(settings, OVERTURE_AUDIT_CHECKPOINT_SECONDS="0.2",
                       OVERTURE_LOG_LEVEL="INFO")
    with log_path.open("wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "overture.cli", "scheduler",
                                 "--interval", "0.05"], env=env, cwd=ROOT,
                                start_new_session=True, stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_until_sealed(head(a)[0])
            write_events(a, 3)
            wait_until_sealed(head(a)[0])
        finally:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=20) == 0
    in_file = [r["mac"] for r in records(path)]
    log_lines = [line for line in log_path.read_text().splitlines()
                 if '"audit.checkpoint"' in line]
    assert len(in_file) >= 2 and [json.loads(x)["mac"] for x in log_lines] == in_file

    # The log lines, shipped elsewhere, verify the chains as well as the file.
    shipped = tmp_path / "shipped.jsonl"
    shipped.write_text("\n".join(log_lines) + "\n")
    result = overture(settings, "audit", "verify", "--checkpoints", str(shipped))
    assert result.exit_code == 0, result.output
    assert f"ws-a: ok ({head(a)[0]} events, sealed up to seq {head(a)[0]}" in result.output


# --------------------------------------------------------------------------- verifying


@pytest.fixture(scope="module")
def workers(settings):
    with running_workers(settings) as worker:
        yield worker


def test_audit_seal_verify_passes_a_chain_with_hot_path_events(world, settings, workers):
    a = world.tenants["a"].id
    wf = publish(a, {"steps": [{"id": "echo", "type": "transform", "output": "{{ input.n }}"}]})
    for n in range(3):
        assert wait_for(a, start(a, wf, {"n": n})).status == "succeeded"
        checkpoint(settings)
    with scoped_to(a):
        ends = audit.list_events(audit.EventFilter(action_prefix="run.succeeded"), None, 10)[0]
        db.session.rollback()
    assert len(ends) == 3  # appended by the engine's run end, hashed in SQL
    result = overture(settings, "audit", "verify")
    assert result.exit_code == 0, result.output
    assert f"ws-a: ok ({head(a)[0]} events, sealed up to seq {head(a)[0]}" in result.output


def test_audit_seal_verify_without_a_checkpoint_says_so(world, settings):
    write_events(world.tenants["a"].id, 2)
    result = overture(settings, "audit", "verify")
    assert result.exit_code == 0, result.output
    assert "no audit checkpoint yet in" in result.output
    assert "ws-a: ok" in result.output and "not sealed yet" in result.output


def test_audit_seal_verify_endpoint_checks_the_seals(app, world, settings, database):
    a = world.tenants["a"].id
    write_events(a, 3)
    auditor = as_user(app, world, "a_auditor")
    assert auditor.get("/audit/verify").get_json()["sealed_seq"] is None
    checkpoint(settings)
    seq, _ = head(a)
    sealed = auditor.get("/audit/verify").get_json()
    assert sealed["ok"] is True and sealed["sealed_seq"] == seq

    rewrite_chain(database, a, seq - 1, {"i": "forged"})
    report = auditor.get("/audit/verify").get_json()
    assert report["ok"] is False and report["broken_seq"] == seq
    assert report["reason"].startswith(f"chain rewritten: seq {seq}")
