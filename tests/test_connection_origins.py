"""A connection's credentials go only to its own origins (`pytest -k origins`): its
base URL's (scheme, host, port) and those its `allowed_origins` setting lists. A
request elsewhere, by an absolute URL or by a redirect, is refused before anything is
sent, with an `origin-refused` problem, and audited (`connection.origin_refused`)."""

from __future__ import annotations

import pytest
from werkzeug.wrappers import Response

from overture.connectors import registry
from overture.connectors.context import base_url_for
from overture.connectors.errors import ActionFailed, OriginRefused
from overture.connectors.models import Connection
from overture.connectors.oauth import complete
from overture.platform.db import db, scoped_to
from tests.connector_library_support import connect
from tests.engine_api_support import audit_events
from tests.engine_support import publish, rows_of, running_workers, start, wait_for
from tests.outbound_support import http_server

TOKEN = "hook-token-0a1b2c3d4e5f"


@pytest.fixture(autouse=True)
def _loopback(monkeypatch):
    """Both servers are local: the address guard allows them, the origin rule must not."""
    monkeypatch.setenv("OVERTURE_OUTBOUND_ALLOWLIST", "127.0.0.1/32")


@pytest.fixture
def elsewhere():
    """A second server: same host, another port, so another origin."""
    with http_server("127.0.0.1") as server:
        yield server


def origin(server) -> str:
    return f"http://127.0.0.1:{server.port}"


def run_request(admin, conn, url, **more):
    return admin.post(f"/connections/{conn}/actions/request",
                      json={"input": {"url": url, **more}})


def test_origins_token_reaches_its_own_origin_only_through_the_api(app, world, httpserver,
                                                                    elsewhere):
    a = world.tenants["a"].id
    httpserver.expect_request("/hello").respond_with_json({"hi": True})
    httpserver.expect_request("/bounce").respond_with_response(Response(
        status=302, headers={"Location": elsewhere.url_for("/bounced")}))
    elsewhere.expect_request("/steal").respond_with_json({"stolen": True})
    admin, conn = connect(app, world, "http", httpserver.url_for("/"), {"bearer_token": TOKEN})

    ok = run_request(admin, conn, "/hello")
    assert ok.status_code == 200, ok.get_json()
    assert httpserver.log[0][0].headers["Authorization"] == f"Bearer {TOKEN}"

    for url in (elsewhere.url_for("/steal"), "/bounce"):
        refused = run_request(admin, conn, url, method="POST", json={"x": 1})
        assert refused.status_code == 422, refused.get_data(as_text=True)
        assert refused.mimetype == "application/problem+json"
        problem = refused.get_json()
        assert problem["type"] == "urn:overture:problem:origin-refused"
        assert (problem["reason"], problem["origin"]) == ("origin_refused", origin(elsewhere))
        assert TOKEN not in refused.get_data(as_text=True)
    assert elsewhere.log == []  # neither the URL nor the redirect reached it
    events = audit_events(a, "connection.origin_refused")
    assert [(e["target_id"], e["details"]["origin"]) for e in events] == \
        [(conn, origin(elsewhere))] * 2
    assert TOKEN not in str(events)

    # Listing the other origin lets the token go there too.
    r = admin.patch(f"/connections/{conn}",
                    json={"settings": {"allowed_origins": [elsewhere.url_for("/")[:-1]]}})
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["settings"]["allowed_origins"] == [origin(elsewhere)]
    reached = run_request(admin, conn, elsewhere.url_for("/steal"))
    assert reached.status_code == 200, reached.get_json()
    assert elsewhere.log[0][0].headers["Authorization"] == f"Bearer {TOKEN}"
    (updated,) = [e for e in audit_events(a, "connection.updated") if e["target_id"] == conn]
    assert updated["details"]["allowed_origins"] == [origin(elsewhere)]


def test_origins_without_a_base_url_the_token_goes_only_to_listed_origins(
        app, world, httpserver):
    httpserver.expect_request("/x").respond_with_json({})
    admin, conn = connect(app, world, "http", None, {"bearer_token": TOKEN})
    refused = run_request(admin, conn, httpserver.url_for("/x"))
    assert refused.status_code == 422, refused.get_json()
    assert "no origin" in refused.get_json()["detail"]
    assert httpserver.log == []
    _, listed = connect(app, world, "http", None, {"bearer_token": TOKEN},
                        settings={"allowed_origins": [httpserver.url_for("/")]})
    assert run_request(admin, listed, httpserver.url_for("/x")).status_code == 200
    assert httpserver.log[0][0].headers["Authorization"] == f"Bearer {TOKEN}"


def test_origins_through_a_workflow_step_on_a_worker(app, world, settings, httpserver,
                                                     elsewhere):
    a = world.tenants["a"].id
    httpserver.expect_request("/own").respond_with_json({"own": True})
    elsewhere.expect_request("/steal").respond_with_json({"stolen": True})
    _, conn = connect(app, world, "http", httpserver.url_for("/"), {"bearer_token": TOKEN})

    def action(url: str) -> dict:
        return {"steps": [{"id": "call", "type": "action", "action": "http.request",
                           "connection": conn, "input": {"url": url}}]}

    steal = publish(a, action(elsewhere.url_for("/steal")), name="steal")
    own = publish(a, action("/own"), name="own")
    with running_workers(settings, processes=1, threads=2):
        refused = wait_for(a, start(a, steal, {}))
        reached = wait_for(a, start(a, own, {}))
    assert refused.status == "failed"
    (row,) = rows_of(a, refused.id)
    assert row.error["code"] == "origin_refused" and row.error["origin"] == origin(elsewhere)
    assert elsewhere.log == []
    assert reached.status == "succeeded", reached.error
    assert [r.headers["Authorization"] for r, _ in httpserver.log] == [f"Bearer {TOKEN}"]
    (event,) = audit_events(a, "connection.origin_refused")
    assert (event["target_id"], event["details"]["origin"]) == (conn, origin(elsewhere))


@pytest.mark.parametrize("value", [
    "https://api.example.com", ["https://api.example.com/v1"], ["ftp://files.example.com"],
    ["api.example.com"], ["https://user:pw@api.example.com"], ["https://api.example.com?x=1"],
    ["https://api.example.com#frag"], ["https://api.example.com:99999"], [5], ["https://"],
])
def test_origins_setting_is_validated_when_saved(app, world, httpserver, value):
    admin, conn = connect(app, world, "http", httpserver.url_for("/"), {"bearer_token": TOKEN})
    r = admin.patch(f"/connections/{conn}", json={"settings": {"allowed_origins": value}})
    assert r.status_code == 422, r.get_json()
    assert r.get_json()["errors"][0]["field"] == "settings.allowed_origins"
    r = admin.post("/connections", json={"connector_key": "http", "name": "bad-origins",
                                         "credentials": {"bearer_token": TOKEN},
                                         "settings": {"allowed_origins": value}})
    assert r.status_code == 422, r.get_json()


def test_origins_setting_is_stored_normalised(app, world):
    admin, conn = connect(app, world, "http", None, {"bearer_token": TOKEN}, settings={
        "allowed_origins": ["HTTPS://Api.Example.com", "http://10.0.0.5:8080/",
                            "https://bücher.example"]})
    stored = admin.get(f"/connections/{conn}").get_json()["settings"]["allowed_origins"]
    assert stored == ["https://api.example.com:443", "http://10.0.0.5:8080",
                      "https://xn--bcher-kva.example:443"]


def test_origins_bad_base_url_is_refused_when_saved(app, world):
    admin, _ = connect(app, world, "http", None, {"bearer_token": TOKEN})
    for bad in ("file:///etc/passwd", "gopher://x", "not a url"):
        r = admin.post("/connections", json={"connector_key": "http", "name": "bad-base",
                                             "credentials": {"bearer_token": TOKEN},
                                             "base_url": bad})
        assert r.status_code == 422 and r.get_json()["errors"][0]["field"] == "base_url"


def test_origins_oauth_endpoint_override_must_be_on_the_connections_origins(
        app, world, httpserver, elsewhere):
    a = world.tenants["a"].id
    _, conn = connect(app, world, "slack", httpserver.url_for("/api"), {
        "client_id": "3336676.569200954261", "client_secret": "slack-client-secret"},
        settings={"token_url": elsewhere.url_for("/api/oauth.v2.access")})
    with scoped_to(a), pytest.raises(OriginRefused) as refused:
        complete(db.session.get(Connection, conn), registry.get("slack"), "the-code",
                 "https://overture.example/oauth/callback")
    assert refused.value.origin == origin(elsewhere)
    assert elsewhere.log == []
    (event,) = audit_events(a, "connection.origin_refused")
    assert event["details"]["origin"] == origin(elsewhere)
    assert "slack-client-secret" not in str(event)


def test_origins_a_base_url_placeholder_fills_host_labels_only():
    jira = registry.get("jira")
    assert base_url_for(jira, None, {"site": "acme"}) == \
        "https://acme.atlassian.net/rest/api/3"
    for trick in ("evil.example/#", "evil.example?", "evil.example:443@x", "a/b",
                  "evil.example\\", "-x", "a b"):
        with pytest.raises(ActionFailed) as bad:
            base_url_for(jira, None, {"site": trick})
        assert bad.value.reason == "misconfigured", trick
