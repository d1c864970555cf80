"""What every API caller relies on: problem documents, the OpenAPI document and its UI,
health probes, request ids in responses and logs, and refusing unsafe production config."""

from __future__ import annotations

import io
import json
import re
import sys

import dramatiq
import pytest

from overture.platform.config import DEFAULT_SECRET, load_settings
from overture.platform.errors import ConfigError
from overture.platform.logging import configure_logging
from overture.web.app import create_app
from tests.conftest import pg_settings
from tests.support import as_key, as_user, login

PROBLEM = "application/problem+json"


def assert_problem(response, status: int) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == PROBLEM
    body = response.get_json(force=True)
    assert body["type"].startswith("urn:overture:problem:")
    assert body["status"] == status
    assert body["title"] and body["detail"]
    return body


def test_unknown_api_route_is_a_problem(app, world):
    body = assert_problem(as_key(app, world, "a_admin").get("/no-such-thing"), 404)
    assert body["type"] == "urn:overture:problem:not-found"
    assert_problem(app.test_client().get("/api/v1/no-such-thing"), 404)


def test_wrong_method_is_a_problem(app, world):
    body = assert_problem(as_key(app, world, "a_admin").delete("/me"), 405)
    assert body["type"] == "urn:overture:problem:method-not-allowed"


def test_unauthenticated_is_a_problem(app, world):
    body = assert_problem(app.test_client().get("/api/v1/members"), 401)
    assert body["type"] == "urn:overture:problem:unauthenticated"


def test_forbidden_is_a_problem(app, world):
    r = as_user(app, world, "a_viewer").post("/members", json={"email": "x@example.com",
                                                               "role": "viewer"})
    assert assert_problem(r, 403)["type"] == "urn:overture:problem:forbidden"


def test_validation_errors_name_each_field(app, world):
    r = as_key(app, world, "a_admin").post("/members", json={"role": "emperor"})
    body = assert_problem(r, 422)
    assert body["type"] == "urn:overture:problem:validation-error"
    fields = {e["field"] for e in body["errors"]}
    assert fields == {"email", "role"}
    assert all(e["message"] for e in body["errors"])
    assert "email" in body["detail"] and "role" in body["detail"]


def test_unknown_json_field_is_rejected(app, world):
    r = as_key(app, world, "a_admin").post("/members", json={
        "email": "x@example.com", "role": "viewer", "is_platform_admin": True})
    body = assert_problem(r, 422)
    assert {e["field"] for e in body["errors"]} == {"is_platform_admin"}
    emails = {m["user"]["email"] for m in
              as_key(app, world, "a_admin").get("/members").get_json()["items"]}
    assert "x@example.com" not in emails


@pytest.mark.parametrize("raw", ["{not json", "[]", "null", '"a string"', "42",
                                 '{"email": ["x"], "role": {"a": 1}}'])
def test_malformed_json_body_is_a_client_error(app, world, raw):
    r = as_key(app, world, "a_admin").post("/members", data=raw,
                                           content_type="application/json")
    assert 400 <= r.status_code < 500, r.get_data(as_text=True)
    assert_problem(r, r.status_code)


def test_non_json_body_is_a_client_error(app, world):
    r = as_key(app, world, "a_admin").post("/members", data="email=x@example.com",
                                           content_type="application/x-www-form-urlencoded")
    assert 400 <= r.status_code < 500
    assert_problem(r, r.status_code)


def test_malformed_ids_in_paths_are_not_found(app, world):
    key = as_key(app, world, "a_admin")
    for path in ("/members/not-a-uuid", "/api-keys/123", "/tenants/%00"):
        assert_problem(key.get(path), 404)


def test_openapi_document(app):
    r = app.test_client().get("/api/v1/openapi.json")
    assert r.status_code == 200
    spec = r.get_json()
    assert spec["openapi"].startswith("3.")
    for path in ("/api/v1/members", "/api/v1/api-keys", "/api/v1/tenants", "/api/v1/me",
                 "/api/v1/tenant", "/api/v1/members/{member_id}"):
        assert path in spec["paths"], path
    assert "post" in spec["paths"]["/api/v1/members"]
    assert "ApiKey" in spec["components"]["securitySchemes"]
    assert not any(p.startswith(("/healthz", "/readyz", "/login")) for p in spec["paths"])
    schemas = spec["components"]["schemas"]
    for ref in re.findall(r'"\$ref": "([^"]+)"', json.dumps(spec)):
        assert ref.removeprefix("#/components/schemas/") in schemas, ref


def test_swagger_ui_loads_only_local_assets(app):
    client = app.test_client()
    r = client.get("/api/v1/docs")
    assert r.status_code == 200
    page = r.get_data(as_text=True)
    refs = re.findall(r'<(?:script|link)\b[^>]*?\b(?:src|href)="([^"]+)"', page)
    assert any(ref.endswith("swagger-ui-bundle.js") for ref in refs), refs
    assert any(ref.endswith(".css") for ref in refs), refs
    for ref in refs:
        assert not re.match(r"^(?:[a-z]+:)?//", ref, re.IGNORECASE), ref
        asset = client.get(ref)
        assert asset.status_code == 200, ref
        assert asset.get_data(), ref
        asset.close()
    assert not re.search(r"""["'](?:https?:)?//""", page), "the page names a remote URL"
    spec_url = re.search(r'data-spec-url="([^"]+)"', page).group(1)
    assert client.get(spec_url).get_json()["openapi"].startswith("3.1")


def test_swagger_assets_do_not_serve_other_files(app):
    client = app.test_client()
    for name in ("..%2F..%2F..%2Fpyproject.toml", "../../../pyproject.toml",
                 "swagger-ui-bundle.js.map"):
        assert client.get(f"/static/swagger-ui/{name}").status_code == 404, name


def test_healthz(app):
    r = app.test_client().get("/healthz")
    assert r.status_code == 200
    assert r.get_json()["status"] == "ok"


def test_readyz_with_database_and_broker(app):
    r = app.test_client().get("/readyz")
    assert r.status_code == 200
    assert r.get_json() == {"status": "ready", "checks": {"database": True, "broker": True}}


@pytest.fixture
def restore_broker():
    """create_app installs its broker globally; put the suite's back afterwards."""
    previous = dramatiq.get_broker()
    yield
    dramatiq.set_broker(previous)


def test_readyz_is_503_when_the_broker_is_unreachable(database, restore_broker):
    broken = create_app(pg_settings(database, REDIS_URL="redis://127.0.0.1:1/0"))
    r = broken.test_client().get("/readyz")
    assert r.status_code == 503
    assert r.get_json()["checks"] == {"database": True, "broker": False}


def test_readyz_is_503_when_the_database_is_unreachable(database, restore_broker):
    broken = create_app(pg_settings(database,
                                    DATABASE_URL=f"postgresql://nobody@127.0.0.1:1/{database}"))
    r = broken.test_client().get("/readyz")
    assert r.status_code == 503
    assert r.get_json()["checks"] == {"database": False, "broker": True}
    assert r.mimetype == PROBLEM and int(r.headers["Retry-After"]) > 0


def test_api_answers_503_problem_when_the_database_is_unreachable(database, restore_broker):
    """Not a 500, and not the teardown's second error (writing the scope into the dead
    transaction), which gunicorn answered with its HTML page."""
    broken = create_app(pg_settings(database,
                                    DATABASE_URL=f"postgresql://nobody@127.0.0.1:1/{database}"))
    client = broken.test_client()
    for path in ("/api/v1/me", "/api/v1/workflows"):
        r = client.get(path, headers={"Authorization": "Bearer ovt_abcdefghijkl_not-a-key"})
        assert r.status_code == 503, r.get_data(as_text=True)
        assert r.mimetype == PROBLEM
        assert r.get_json()["type"] == "urn:overture:problem:unavailable"
        assert int(r.headers["Retry-After"]) > 0


@pytest.fixture
def log_lines(settings):
    """The app's JSON log lines, captured from the real handler and renderer."""
    stream = io.StringIO()
    configure_logging("INFO", stream=stream)

    def lines() -> list[dict]:
        return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]

    yield lines
    configure_logging(settings.log_level, stream=sys.stdout)


def test_request_id_is_echoed_and_logged(app, world, log_lines):
    r = as_key(app, world, "a_admin").client.get(
        "/api/v1/me", headers={"X-Request-ID": "req-42.abc_DEF",
                               "Authorization": f"Bearer {world.keys['a_admin'][1]}"})
    assert r.status_code == 200
    assert r.headers["X-Request-ID"] == "req-42.abc_DEF"
    entries = [e for e in log_lines() if e.get("event") == "request"]
    assert entries, log_lines()
    assert entries[-1]["request_id"] == "req-42.abc_DEF"
    assert entries[-1]["path"] == "/api/v1/me" and entries[-1]["status"] == 200


def test_request_id_is_generated_when_missing_or_unsafe(app, log_lines):
    client = app.test_client()
    generated = client.get("/healthz").headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", generated)
    unsafe = client.get("/healthz", headers={"X-Request-ID": 'evil"} {"x' + "y" * 80})
    echoed = unsafe.headers["X-Request-ID"]
    assert echoed != generated and re.fullmatch(r"[0-9a-f]{32}", echoed)
    ids = [e["request_id"] for e in log_lines() if e.get("event") == "request"]
    assert ids[-2:] == [generated, echoed]


def test_passwords_and_tokens_never_reach_the_logs(app, world, log_lines):
    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    client.post("/login", data={"email": "a.admin@people.example.com",
                                "password": "hunter2-but-longer", "csrf_token": csrf})
    token = world.keys["a_admin"][1]
    assert as_key(app, world, "a_admin").get("/members").status_code == 200
    as_key(app, world, "a_admin").client.get("/api/v1/members",
                                            headers={"Authorization": f"Bearer {token}x"})
    text = json.dumps(log_lines())
    assert "auth.login_failed" in text  # the attempts were logged ...
    assert "hunter2-but-longer" not in text  # ... without what was typed
    assert token.split("_", 2)[2] not in text


def test_problem_documents_carry_the_request_id(app):
    r = app.test_client().get("/api/v1/members", headers={"X-Request-ID": "trace-me"})
    assert assert_problem(r, 401)["request_id"] == "trace-me"


PRODUCTION = {"OVERTURE_ENV": "production",
              "DATABASE_URL": "postgresql://app@db.internal/overture",
              "REDIS_URL": "redis://redis.internal:6379/0",
              "OVERTURE_INSTANCE_PATH": "/tmp/overture-test-production"}


@pytest.mark.parametrize("secret", [None, "", "   ", DEFAULT_SECRET, "short-but-set"])
def test_production_refuses_a_missing_or_default_secret_key(secret):
    env = dict(PRODUCTION)
    if secret is not None:
        env["SECRET_KEY"] = secret
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        load_settings(env)


def test_production_accepts_a_real_secret_key_and_secures_cookies():
    settings = load_settings(PRODUCTION | {"SECRET_KEY": "x" * 48})
    assert settings.is_production
    assert settings.secret_key == "x" * 48
    assert settings.session_cookie_secure


def test_development_generates_a_secret_key(tmp_path):
    settings = load_settings({"OVERTURE_ENV": "development",
                              "OVERTURE_INSTANCE_PATH": str(tmp_path)})
    assert len(settings.secret_key) >= 32
    again = load_settings({"OVERTURE_ENV": "development", "OVERTURE_INSTANCE_PATH": str(tmp_path)})
    assert again.secret_key == settings.secret_key  # sessions survive a restart


def test_unknown_environment_is_refused():
    with pytest.raises(ConfigError, match="OVERTURE_ENV"):
        load_settings({"OVERTURE_ENV": "prod"})


def test_a_signed_in_person_gets_a_503_page_when_the_database_is_unreachable(
        app, world, database, restore_broker):
    """The console for someone signed in while the database is away: who they are cannot
    be read, and the answer is the console's 503 page with Retry-After, never a 500."""
    client = app.test_client()
    login(client, world.users["a_admin"].email)
    cookie = client.get_cookie("session")
    assert cookie is not None
    broken = create_app(pg_settings(database,
                                    DATABASE_URL=f"postgresql://nobody@127.0.0.1:1/{database}"))
    visitor = broken.test_client()
    visitor.set_cookie("session", cookie.value)
    for path in ("/", "/runs"):
        r = visitor.get(path, headers={"Accept": "text/html"})
        assert r.status_code == 503, r.get_data(as_text=True)
        assert r.mimetype == "text/html"
        assert "briefly unavailable" in r.get_data(as_text=True)
        assert int(r.headers["Retry-After"]) > 0
