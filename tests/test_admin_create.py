"""`overture admin create EMAIL`: the first platform admin of a production install.

ASVS 5.0 requirements each test covers are listed in docs/asvs.md.
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path

import dramatiq
import pytest
from click.testing import CliRunner
from sqlalchemy import select

from overture.cli import main
from overture.platform.audit import AuditEvent
from overture.platform.db import PLATFORM_TENANT_ID, db, scoped_to
from overture.tenants.users import find_user_by_email
from overture.web.app import create_app
from tests.conftest import create_database, drop_database, pg_env, pg_settings
from tests.support import PASSWORD, csrf_token, login

ROOT = Path(__file__).resolve().parents[1]
ADMIN = "first.admin@ops.example.com"
GOOD = "plum tree under the bridge"


@pytest.fixture
def keep_broker():
    previous = dramatiq.get_broker()  # each command's create_app installs its own broker
    yield
    dramatiq.set_broker(previous)


@pytest.fixture
def cli(database, keep_broker):
    runner = CliRunner()
    return lambda *args, **kw: runner.invoke(main, list(args), env=pg_env(database), **kw)


def production_env(dbname: str, tmp_path: Path) -> dict[str, str]:
    key = base64.urlsafe_b64encode(os.urandom(32)).decode()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OVERTURE_", "DATABASE_"))}
    env.update(pg_env(dbname), OVERTURE_ENV="production", OVERTURE_MASTER_KEY=f"k1:{key}",
               OVERTURE_INSTANCE_PATH=str(tmp_path))
    return env


def overture(env: dict[str, str], *args: str, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "overture.cli", *args], cwd=ROOT, env=env,
                          input=stdin, capture_output=True, text=True, timeout=120)


def test_first_admin_on_a_fresh_production_database_then_signs_in(tmp_path, keep_broker):
    name = create_database("overture_first_admin")
    try:
        env = production_env(name, tmp_path)
        upgraded = overture(env, "db", "upgrade")
        assert upgraded.returncode == 0, upgraded.stderr
        made = overture(env, "admin", "create", ADMIN, "--name", "Ops Lead",
                        "--password-stdin", stdin=GOOD + "\n")
        assert made.returncode == 0, made.stderr
        assert f"created platform admin {ADMIN}" in made.stdout
        assert GOOD not in made.stdout + made.stderr

        app = create_app(pg_settings(name))
        client = app.test_client()
        login(client, ADMIN, GOOD)
        me = client.get("/api/v1/me").get_json()
        assert me["user"]["is_platform_admin"] is True and me["user"]["name"] == "Ops Lead"
        assert client.get("/api/v1/tenants").status_code == 200  # platform administration
        with app.app_context(), scoped_to(PLATFORM_TENANT_ID):
            (event,) = db.session.scalars(select(AuditEvent)
                                          .where(AuditEvent.action == "user.created")).all()
            assert (event.actor_type, event.actor_label) == ("cli",
                                                             "overture admin create (CLI)")
            assert event.details == {"email": ADMIN, "platform_admin": True}
            db.session.remove()
        with app.app_context():
            db.engine.dispose()
    finally:
        drop_database(name)


def test_the_password_is_asked_twice_and_never_shown(app_ctx, cli):
    result = cli("admin", "create", ADMIN, input=f"{GOOD}\n{GOOD}\n")
    assert result.exit_code == 0, result.output
    assert "Password: " in result.output and "Repeat for confirmation: " in result.output
    assert GOOD not in result.output
    client = app_ctx.test_client()
    assert client.post("/login", data={"email": ADMIN, "password": GOOD,
                                       "csrf_token": csrf_token(client)}).status_code == 302


def test_two_different_passwords_create_no_one(app_ctx, cli):
    result = cli("admin", "create", ADMIN, input=f"{GOOD}\n{GOOD} but not\n")
    assert result.exit_code != 0
    assert "do not match" in result.output
    db.session.expire_all()
    assert find_user_by_email(ADMIN) is None


@pytest.mark.parametrize(("weak", "reason"), [
    ("", "at least 12 characters"),
    ("tiny pw", "at least 12 characters"),
    ("PasswordPassword", "most common passwords"),
    ("first.admin-2025", "easy to guess"),
])
def test_a_weak_password_is_refused_with_the_reason(app_ctx, cli, weak, reason):
    result = cli("admin", "create", ADMIN, "--password-stdin", input=weak + "\n")
    assert result.exit_code == 1
    assert reason in result.output and "Traceback" not in result.output
    db.session.expire_all()
    assert find_user_by_email(ADMIN) is None


def test_an_existing_email_is_refused(app, world, cli):
    existing = world.users["a_viewer"].email
    result = cli("admin", "create", existing.upper(), "--password-stdin", input=GOOD + "\n")
    assert result.exit_code == 1
    assert "a user with this email exists" in result.output
    db.session.expire_all()
    assert not find_user_by_email(existing).is_platform_admin
    client = app.test_client()
    assert client.post("/login", data={"email": existing, "password": PASSWORD,
                                       "csrf_token": csrf_token(client)}).status_code == 302
