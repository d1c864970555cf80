"""Key rotation drills, interrupted rotations, and start-up refusing keys that cannot
decrypt (`pytest -k vault`)."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import select

from overture.platform.audit import AuditEvent
from overture.platform.db import db, scoped_to
from overture.platform.errors import ConfigError
from overture.tenants import vault, vault_rotation
from overture.tenants.vault_models import Credential, MasterKeyProbe, TenantKey
from overture.web.app import create_app
from tests.conftest import pg_settings
from tests.vault_support import (
    cli_env,
    make_credential,
    master_entry,
    plaintext,
    restored_broker,
    superuser,
    use,
)

OVERTURE = str(Path(__file__).resolve().parents[1] / ".venv" / "bin" / "overture")


@pytest.fixture(autouse=True)
def _forget_vault_rows(database):
    """Drills leave probes for throwaway master keys; no later app may trip over them."""
    yield
    with superuser(database) as conn:
        conn.execute("TRUNCATE credentials, tenant_keys, master_key_probes CASCADE")


def key_rows(database, tenant_id):
    with superuser(database) as conn:
        return conn.execute("SELECT version, master_kid FROM tenant_keys WHERE tenant_id = %s "
                            "ORDER BY version", (tenant_id,)).fetchall()


def credential_versions(database, tenant_id):
    with superuser(database) as conn:
        return [v for (v,) in conn.execute(
            "SELECT key_version FROM credentials WHERE tenant_id = %s ORDER BY id",
            (tenant_id,))]


def probes(database):
    with superuser(database) as conn:
        return [k for (k,) in conn.execute("SELECT kid FROM master_key_probes ORDER BY kid")]


def seed(world, tenant, count):
    """`count` credentials in `tenant`; returns {id: secret}."""
    out = {}
    for _ in range(count):
        secret = plaintext()
        out[make_credential(world, tenant, fields={"api_key": secret}).id] = secret
    return out


def assert_all_open(world, tenant, secrets):
    for cid, secret in secrets.items():
        assert use(world, tenant, cid)["api_key"] == secret


# --------------------------------------------------------------------------- tenant key


def test_vault_rotate_tenant_drill(world, database):
    a_secrets, b_secrets = seed(world, "a", 5), seed(world, "b", 3)
    a_id, b_id = world.tenants["a"].id, world.tenants["b"].id
    assert set(credential_versions(database, a_id)) == {1}
    b_keys_before = key_rows(database, b_id)

    report = vault_rotation.rotate_tenant(world.tenants["a"])

    assert (report.to_version, report.resealed, report.removed_versions) == (2, 5, [1])
    assert not report.resumed
    assert set(credential_versions(database, a_id)) == {2}  # nothing under the old version
    assert [v for v, _ in key_rows(database, a_id)] == [2]
    assert key_rows(database, b_id) == b_keys_before
    assert set(credential_versions(database, b_id)) == {1}
    assert_all_open(world, "a", a_secrets)
    assert_all_open(world, "b", b_secrets)
    # New credentials go under the new key; a second rotation moves on again.
    a_secrets |= seed(world, "a", 1)
    assert credential_versions(database, a_id)[-1] == 2
    assert vault_rotation.rotate_tenant(world.tenants["a"]).to_version == 3
    assert set(credential_versions(database, a_id)) == {3}
    assert_all_open(world, "a", a_secrets)
    with scoped_to(a_id):
        actions = db.session.scalars(select(AuditEvent.action)
                                     .where(AuditEvent.action == "vault.key_rotated")).all()
    assert len(actions) == 2


def test_vault_rotate_tenant_interrupted_after_some_rows_resumes(world, database, monkeypatch):
    secrets = seed(world, "a", 8)
    a_id = world.tenants["a"].id
    real_reseal, calls = vault.reseal, []

    def failing_reseal(credential, version):
        if len(calls) == 3:
            raise KeyboardInterrupt("operator pressed ^C")
        calls.append(credential.id)
        return real_reseal(credential, version)

    monkeypatch.setattr(vault, "reseal", failing_reseal)
    with pytest.raises(KeyboardInterrupt):
        vault_rotation.rotate_tenant(world.tenants["a"])
    db.session.rollback()
    monkeypatch.setattr(vault, "reseal", real_reseal)

    # Half-way: both versions exist, three rows moved, and everything still opens.
    assert [v for v, _ in key_rows(database, a_id)] == [1, 2]
    assert sorted(credential_versions(database, a_id)) == [1] * 5 + [2] * 3
    assert_all_open(world, "a", secrets)

    report = vault_rotation.rotate_tenant(world.tenants["a"])
    assert report.resumed and report.to_version == 2  # finished, not rotated again
    assert (report.resealed, report.removed_versions) == (5, [1])
    assert set(credential_versions(database, a_id)) == {2}
    assert [v for v, _ in key_rows(database, a_id)] == [2]
    assert_all_open(world, "a", secrets)


def test_vault_rotate_tenant_killed_in_a_subprocess_and_run_again(world, database, settings):
    secrets = seed(world, "a", 150)
    a_id = world.tenants["a"].id
    env = cli_env(settings)
    proc = subprocess.Popen([OVERTURE, "keys", "rotate-tenant", "ws-a"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seen = []
    assert proc.stdout is not None
    for line in proc.stdout:
        seen.append(line)
        if "resealed 10/150" in line:
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, "".join(seen)

    versions = credential_versions(database, a_id)
    assert 10 <= versions.count(2) < 150, "killed half-way"
    assert [v for v, _ in key_rows(database, a_id)] == [1, 2]

    done = subprocess.run([OVERTURE, "keys", "rotate-tenant", "ws-a"], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "resuming the rotation to data key version 2" in done.stdout
    assert set(credential_versions(database, a_id)) == {2}
    assert [v for v, _ in key_rows(database, a_id)] == [2]
    assert_all_open(world, "a", secrets)
    for value in secrets.values():
        assert value not in done.stdout + done.stderr + "".join(seen)


# --------------------------------------------------------------------------- master key


def make_app(database, **env):
    return create_app(pg_settings(database, **env))


def test_vault_rotate_master_drill(world, database):
    k1, k2 = master_entry("k1"), master_entry("k2")
    with restored_broker():
        old_app = make_app(database, OVERTURE_MASTER_KEY=k1)
        with old_app.app_context():
            secrets = {t: seed(world, t, 2) for t in ("a", "b", "c")}
        assert probes(database) == ["k1"]

        both = make_app(database, OVERTURE_MASTER_KEY=f"{k2},{k1}")
        with both.app_context():
            report = vault_rotation.rotate_master()
            assert report.rewrapped == 3 and report.retired_kids == ["k1"]
            assert vault_rotation.rotate_master().rewrapped == 0  # idempotent
        for t in ("a", "b", "c"):
            assert key_rows(database, world.tenants[t].id) == [(1, "k2")]
        assert probes(database) == ["k2"]

        new_app = make_app(database, OVERTURE_MASTER_KEY=k2)  # k1 may leave the keyring
        with new_app.app_context():
            for t, values in secrets.items():
                assert_all_open(world, t, values)
        with pytest.raises(ConfigError, match="master key 'k2' is missing"):
            make_app(database, OVERTURE_MASTER_KEY=k1)


def test_vault_rotate_master_interrupted_resumes(world, database, monkeypatch):
    k1, k2 = master_entry("k1"), master_entry("k2")
    with restored_broker():
        with make_app(database, OVERTURE_MASTER_KEY=k1).app_context():
            secrets = {t: seed(world, t, 1) for t in ("a", "b", "c")}
        both = make_app(database, OVERTURE_MASTER_KEY=f"{k2},{k1}")
        real_rewrap, calls = vault.rewrap, []

        def failing_rewrap(key):
            if calls:
                raise RuntimeError("killed")
            calls.append(key.id)
            return real_rewrap(key)

        with both.app_context():
            monkeypatch.setattr(vault, "rewrap", failing_rewrap)
            with pytest.raises(RuntimeError):
                vault_rotation.rotate_master()
            db.session.rollback()
            monkeypatch.setattr(vault, "rewrap", real_rewrap)
            kids = sorted(kid for t in ("a", "b", "c")
                          for _, kid in key_rows(database, world.tenants[t].id))
            assert kids == ["k1", "k1", "k2"]
            assert probes(database) == ["k1", "k2"]  # k1 is still needed
            for t, values in secrets.items():
                assert_all_open(world, t, values)
            assert vault_rotation.rotate_master().rewrapped == 2
        assert probes(database) == ["k2"]
        with make_app(database, OVERTURE_MASTER_KEY=k2).app_context():
            for t, values in secrets.items():
                assert_all_open(world, t, values)


# --------------------------------------------------------------------------- start-up


def test_vault_startup_fails_clearly_with_a_missing_or_wrong_master_key(world, database,
                                                                         tmp_path):
    make_credential(world, "a")
    kid = probes(database)[0]
    with restored_broker():
        with pytest.raises(ConfigError, match=f"master key '{kid}' is missing"):
            make_app(database, OVERTURE_MASTER_KEY=master_entry("someone-else"))
        # Development with a fresh instance folder generates a new key: not the one needed.
        with pytest.raises(ConfigError, match=f"master key '{kid}' is missing"):
            make_app(database, OVERTURE_INSTANCE_PATH=str(tmp_path))
        with pytest.raises(ConfigError, match=f"master key '{kid}' cannot unwrap"):
            make_app(database, OVERTURE_MASTER_KEY=master_entry(kid))
        with pytest.raises(ConfigError, match="needs a master key in production"):
            make_app(database, OVERTURE_ENV="production",
                     OVERTURE_INSTANCE_PATH=str(tmp_path / "prod"))
        with pytest.raises(ConfigError, match="must be 32 random bytes"):
            make_app(database, OVERTURE_MASTER_KEY="k1:dG9vLXNob3J0")
        # The right key, behind a new primary, starts.
        right = (Path(pg_settings(database).instance_path) / "master_key").read_text().strip()
        app = make_app(database, OVERTURE_MASTER_KEY=f"{master_entry('newer')},{right}")
        assert app.extensions[vault.WRAPPER].primary_kid == "newer"


def test_vault_cli_refuses_to_run_with_a_wrong_master_key(world, database, settings):
    make_credential(world, "a")
    kid = probes(database)[0]
    done = subprocess.run([OVERTURE, "keys", "rotate-tenant", "ws-a"],
                          env=cli_env(settings, OVERTURE_MASTER_KEY=master_entry(kid)),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert f"master key '{kid}' cannot unwrap" in done.stderr
    assert "Traceback" not in done.stderr
    with scoped_to(world.tenants["a"].id):
        assert db.session.scalars(select(TenantKey.version)).all() == [1]


def test_vault_no_master_key_probe_holds_a_data_key(world, database):
    make_credential(world, "a")
    with superuser(database) as conn:
        (wrapped,) = conn.execute("SELECT wrapped FROM master_key_probes").fetchone()
        (data_key,) = conn.execute("SELECT wrapped_key FROM tenant_keys").fetchone()
    assert wrapped.startswith("v1:") and data_key.startswith("v1:") and wrapped != data_key
    assert db.session.scalars(select(MasterKeyProbe)).all()  # readable with no tenant
    assert db.session.scalars(select(Credential)).all() == []  # credentials are not
