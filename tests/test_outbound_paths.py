"""Every outbound path goes through the guard (`pytest -k outbound`).

The scan (tests/outbound_scan.py) fails when code outside the guard opens a connection
itself, and lists the paths that go through it; each path has a test here proving that
a connection, credential or URL aimed at loopback is refused with a clear
`blocked-destination` problem while a real local listener sees no connection at all.
"""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from werkzeug.wrappers import Response

from overture.connectors import polling, registry
from overture.connectors.errors import DestinationBlocked
from overture.connectors.models import Connection
from overture.connectors.oauth import complete
from overture.orchestration.llm import errors
from overture.orchestration.llm.calls import ModelSettings, chat
from overture.orchestration.llm.types import Message
from overture.platform import mail, mail_delivery
from overture.platform.db import db, scoped_to, utcnow
from overture.tenants.vault_models import Credential
from tests.agent_fakes import FakeAnthropic, FakeOpenAI, answer, create_agent
from tests.connector_library_support import call, connect
from tests.engine_api_support import ok
from tests.engine_support import publish, rows_of, running_workers, start, wait_for
from tests.outbound_scan import scan_source, scan_tree
from tests.outbound_support import listening
from tests.support import as_key, as_user
from tests.vault_support import make_credential

# The outbound paths the scan finds, and the test below that proves each refuses.
OUTBOUND_PATHS = {
    "overture/connectors/client.py": "test_outbound_connector_http_actions_refuse_loopback",
    "overture/connectors/oauth.py": "test_outbound_oauth_token_exchange_and_refresh_refuse",
    "overture/connectors/library/smtp.py": "test_outbound_smtp_imap_postgres_refuse_loopback",
    "overture/connectors/library/imap.py": "test_outbound_smtp_imap_postgres_refuse_loopback",
    "overture/connectors/library/postgres.py":
        "test_outbound_smtp_imap_postgres_refuse_loopback",
    "overture/connectors/library/mcp.py": "test_outbound_mcp_server_refuses_loopback",
    "overture/orchestration/llm/openai_provider.py": "test_outbound_model_providers_refuse",
    "overture/orchestration/llm/anthropic_provider.py": "test_outbound_model_providers_refuse",
    "overture/tenants/oidc.py": "test_outbound_sso_provider_refuses_loopback",
    "overture/platform/mail_transport.py": "test_outbound_tenant_mail_server_refuses_loopback",
    "overture/billing/stripe_api.py": "test_outbound_stripe_refuses_loopback",
    "overture/tenants/events/sender.py": "test_outbound_event_deliveries_refuse_loopback",
}


@pytest.fixture
def no_allowlist(monkeypatch):
    monkeypatch.delenv("OVERTURE_OUTBOUND_ALLOWLIST", raising=False)


# --------------------------------------------------------------------------- the scan


def test_outbound_scan_finds_no_path_around_the_guard():
    report = scan_tree()
    assert report.findings == [], "\n".join(map(str, report.findings))


def test_outbound_scan_lists_each_path_and_each_has_a_refusal_test():
    paths = set(scan_tree().guard_uses)
    assert paths == set(OUTBOUND_PATHS), (
        "a new outbound path: add it to OUTBOUND_PATHS with a test that it refuses "
        f"loopback; found {sorted(paths)}")
    for test_name in OUTBOUND_PATHS.values():
        assert callable(globals().get(test_name)), test_name


@pytest.mark.parametrize("source", [
    "import httpx\nhttpx.get(url)",
    "import httpx2\nclient = httpx2.Client()",
    "from httpx2 import Client as C\nC().get(url)",
    "import requests\nrequests.post(url)",
    "import urllib.request\nurllib.request.urlopen(url)",
    "from urllib.request import urlopen\nurlopen(url)",
    "import socket\nsocket.create_connection((host, 25))",
    "from socket import socket as s\ns()",
    "import http.client\nhttp.client.HTTPSConnection(host)",
    "import smtplib\nsmtplib.SMTP(host)",
    "import smtplib\nclass Mine(smtplib.SMTP_SSL): pass",
    "import imaplib\nimaplib.IMAP4_SSL(host)",
    "import psycopg\npsycopg.connect(host=tenant_host)",
    "from psycopg import connect\nconnect(dsn)",
    "import openai\nopenai.OpenAI(base_url=url)",
    "import openai\nopenai.OpenAI(base_url=url, http_client=my_client)",
    "import openai\nfactory = openai.AzureOpenAI",
    "from anthropic import Anthropic\nAnthropic(base_url=url)",
    "from authlib.integrations.httpx_client import OAuth2Client\nOAuth2Client(id, secret)",
    "import asyncio\nasyncio.open_connection(host, 80)",
    "import ftplib\nftplib.FTP(host)",
])
def test_outbound_scan_catches_a_bypass(source):
    assert scan_source(source, "overture/connectors/library/new.py").findings, source


@pytest.mark.parametrize("source", [
    "from overture.platform import http\nhttp.request('GET', url)",
    "import openai\nfrom overture.platform import http\n"
    "openai.OpenAI(base_url=u, http_client=http.client(u))",
    "import smtplib\ntry:\n    pass\nexcept smtplib.SMTPException:\n    pass",
    "import imaplib\ntry:\n    pass\nexcept imaplib.IMAP4.error:\n    pass",
    "import openai\ntry:\n    pass\nexcept openai.APIError:\n    pass",
])
def test_outbound_scan_lets_guarded_code_be(source):
    assert scan_source(source, "overture/connectors/library/new.py").findings == []


# --------------------------------------------------------------------------- model providers


@pytest.mark.parametrize(("provider", "fields"), [
    ("openai", {"path": "/v1"}),
    ("anthropic", {"path": ""}),
    ("openai_compatible", {"path": "/v1"}),
    ("azure_openai", {"path": "", "api_version": "2024-10-21"}),
])
def test_outbound_model_providers_refuse(world, no_allowlist, provider, fields):
    with listening() as listener:
        extra = {k: v for k, v in fields.items() if k != "path"}
        credential = make_credential(world, "a", fields={
            "api_key": "sk-never-leaves", "base_url": listener.url(fields["path"]), **extra})
        with scoped_to(world.tenants["a"].id), pytest.raises(errors.ProviderBlocked) as refused:
            chat(ModelSettings(provider, "some-model", max_retries=2), credential.id,
                 [Message(role="user", content="hello")])
        assert listener.connections() == 0
    assert refused.value.status == 422 and refused.value.code == "blocked-destination"
    assert "127.0.0.1" in refused.value.detail and "sk-never" not in refused.value.detail


@pytest.mark.parametrize("fake_class", [FakeOpenAI, FakeAnthropic])
def test_outbound_model_key_does_not_follow_a_redirect_elsewhere(world, monkeypatch,
                                                                  httpserver, fake_class):
    """The provider's server is allowed (the allow-list); it redirects the call to
    another origin on the same host: the key does not follow."""
    monkeypatch.setenv("OVERTURE_OUTBOUND_ALLOWLIST", "127.0.0.1/32")
    with listening() as elsewhere:
        fake = fake_class(httpserver)
        httpserver.clear()
        httpserver.expect_request(fake.path).respond_with_response(Response(
            status=307, headers={"Location": elsewhere.url(fake.path)}))
        provider = "openai" if fake_class is FakeOpenAI else "anthropic"
        with scoped_to(world.tenants["a"].id), pytest.raises(errors.ProviderBlocked) as refused:
            chat(ModelSettings(provider, "some-model"), fake.credential(world).id,
                 [Message(role="user", content="hello")])
        assert elsewhere.connections() == 0
    assert f"127.0.0.1:{elsewhere.port}" in refused.value.detail
    assert len(httpserver.log) == 1  # asked once: a refusal is not retried


def test_outbound_chat_with_a_loopback_model_is_a_4xx_problem(app, world, no_allowlist):
    with listening() as listener:
        credential = make_credential(world, "a", fields={"api_key": "sk-x",
                                                         "base_url": listener.url("/v1")})
        aid = create_agent(world, {"name": f"desk-{uuid.uuid4().hex[:6]}",
                                   "model": {"provider": "openai", "model": "gpt-4o-mini"},
                                   "credential_id": str(credential.id)})
        builder = as_user(app, world, "a_builder")
        conversations = f"/agents/{aid}/conversations"
        created = builder.post(conversations, json={})
        assert created.status_code == 201, created.get_json()
        r = builder.post(f"{conversations}/{created.get_json()['id']}/messages",
                         json={"content": "hello"})
        assert listener.connections() == 0
    assert r.status_code == 422, r.get_data(as_text=True)
    assert r.mimetype == "application/problem+json"
    problem = r.get_json()
    assert problem["error"]["code"] == "blocked_destination"
    assert "127.0.0.1" in problem["error"]["message"]


def test_outbound_agent_step_on_a_worker_fails_clearly(app_ctx, world, settings):
    a = world.tenants["a"].id
    with listening() as listener:
        credential = make_credential(world, "a", fields={"api_key": "sk-x",
                                                         "base_url": listener.url("")})
        create_agent(world, {"name": "closer",
                             "model": {"provider": "anthropic", "model": "claude-haiku-4-5"},
                             "credential_id": str(credential.id)})
        wf = publish(a, {"steps": [{"id": "think", "type": "agent", "agent": "closer"}]})
        # This worker's installation allows no private address.
        with running_workers(settings, processes=1, threads=2,
                             env={"OVERTURE_OUTBOUND_ALLOWLIST": ""}):
            run = wait_for(a, start(a, wf, {"ticket": 1}))
        assert listener.connections() == 0
    assert run.status == "failed"
    (row,) = rows_of(a, run.id)
    assert row.error["code"] == "blocked_destination", row.error
    assert "127.0.0.1" in row.error["message"] and "closer" in row.error["message"]
    assert row.attempt == 1  # a refusal is not retried


# --------------------------------------------------------------------------- connectors


def test_outbound_connector_http_actions_refuse_loopback(app, world, no_allowlist):
    with listening() as listener:
        admin, hooks = connect(app, world, "http", listener.url("/"),
                               {"bearer_token": "hook-token-never-sent"})
        r = admin.post(f"/connections/{hooks}/actions/request",
                       json={"input": {"url": "/admin", "method": "POST"}})
        assert r.status_code == 422, r.get_data(as_text=True)
        assert r.mimetype == "application/problem+json"
        assert r.get_json()["type"] == "urn:overture:problem:blocked-destination"
        assert r.get_json()["reason"] == "blocked"
        _, github = connect(app, world, "github", listener.url("/"), {"api_key": "ghp_x"})
        r = admin.post(f"/connections/{github}/actions/create_issue", json={"input": {
            "owner": "acme", "repo": "site", "title": "t"}})
        assert r.status_code == 422, r.get_data(as_text=True)
        assert r.get_json()["type"] == "urn:overture:problem:blocked-destination"
        assert listener.connections() == 0


def test_outbound_mcp_server_refuses_loopback(app, world, no_allowlist):
    with listening() as listener:
        admin, tools = connect(app, world, "mcp", listener.url("/mcp"),
                               {"bearer_token": "mcp-token-never-sent"})
        r = admin.post(f"/connections/{tools}/actions/call_tool",
                       json={"input": {"tool": "add", "arguments": {"a": 1}}})
        assert r.status_code == 422, r.get_data(as_text=True)
        assert r.get_json()["type"] == "urn:overture:problem:blocked-destination"
        assert listener.connections() == 0


def _oauth_connection(app, world, listener) -> str:
    _, conn = connect(app, world, "slack", listener.url("/api"), {
        "client_id": "3336676.569200954261", "client_secret": "slack-client-secret",
        "access_token": "xoxb-old", "refresh_token": "xoxe-refresh"},
        settings={"token_url": listener.url("/api/oauth.v2.access"),
                  "authorize_url": listener.url("/oauth/v2/authorize")})
    return conn


def test_outbound_oauth_token_exchange_and_refresh_refuse(app, world, no_allowlist):
    slack = registry.get("slack")
    with listening() as listener:
        conn = _oauth_connection(app, world, listener)
        with scoped_to(world.tenants["a"].id):
            connection = db.session.get(Connection, conn)
            with pytest.raises(DestinationBlocked) as exchange:
                complete(connection, slack, "the-code", "https://overture.example/cb")
            credential = db.session.get(Credential, connection.credential_id)
            past = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
            credential.public = {**credential.public, "expires_at": past}
            db.session.commit()
        with pytest.raises(DestinationBlocked) as refresh:
            call(world, conn, "post_message", {"channel": "C1", "text": "hi"})
        assert listener.connections() == 0
    for refused in (exchange.value, refresh.value):
        assert refused.code == "blocked-destination" and "127.0.0.1" in refused.detail


def test_outbound_sso_provider_refuses_loopback(app, world, no_allowlist):
    """An SSO issuer on loopback (allowed as a URL in test): discovery never connects,
    and the person signing in sees a 502 page saying why."""
    with listening() as listener:
        admin = as_user(app, world, "a_admin", tenant="a")
        r = admin.call("PUT", "/sso", json={"issuer": listener.url("").rstrip("/"),
                                            "client_id": "c", "client_secret": "s"})
        assert r.status_code == 200, r.get_json()
        page = app.test_client().get("/sso/ws-a/start")
        assert listener.connections() == 0
    assert page.status_code == 502 and "not allowed" in page.get_data(as_text=True)


def test_outbound_smtp_imap_postgres_refuse_loopback(app, world, no_allowlist):
    email = {"to": ["ada@client.example.com"], "subject": "Hi", "text": "Hello"}
    with listening() as listener:
        server = {"host": "127.0.0.1", "port": listener.port, "security": "none",
                  "username": "mailer", "password": "pw"}
        admin, smtp = connect(app, world, "smtp", None,
                              {**server, "from_address": "robot@agency.example.com"})
        r = admin.post(f"/connections/{smtp}/actions/send_email", json={"input": email})
        assert r.status_code == 422, r.get_data(as_text=True)
        assert r.get_json()["type"] == "urn:overture:problem:blocked-destination"

        _, pg = connect(app, world, "postgres", None, {
            "host": "2130706433", "port": listener.port, "database": "shop", "user": "u",
            "password": "pw"})
        r = admin.post(f"/connections/{pg}/actions/query", json={"input": {"sql": "SELECT 1"}})
        assert r.status_code == 422, r.get_data(as_text=True)
        assert r.get_json()["type"] == "urn:overture:problem:blocked-destination"

        _, imap = connect(app, world, "imap", None, {**server, "host": "[::ffff:127.0.0.1]"})
        with scoped_to(world.tenants["a"].id), pytest.raises(DestinationBlocked):
            polling.poll(db.session.get(Connection, imap), "new_email", {})
        assert listener.connections() == 0


def test_outbound_tenant_mail_server_refuses_loopback(app, world, monkeypatch):
    """A tenant's own SMTP server is a tenant-supplied place: saved while the
    operator allowed loopback, it is refused at delivery once that is withdrawn (a
    name can come to resolve to a private address after it was saved)."""
    monkeypatch.setenv("OVERTURE_OUTBOUND_ALLOWLIST", "127.0.0.0/8")
    monkeypatch.setitem(app.extensions, mail.SENDER, lambda message_id, delay_ms: None)
    with listening() as listener:
        admin = as_key(app, world, "a_admin")
        saved = admin.put("/mail-server", json={
            "host": "127.0.0.1", "port": listener.port, "security": "none",
            "from_address": "hello@ws-a.example"})
        assert saved.status_code == 200, saved.get_data(as_text=True)
        monkeypatch.delenv("OVERTURE_OUTBOUND_ALLOWLIST")
        message = ok(admin.post("/mail-server/test"), 202)
        app.extensions[mail_delivery.EXTENSION].fn(message["id"])
        shown = ok(admin.get(f"/mail-server/test/{message['id']}"))
        assert shown["status"] == "pending" and shown["attempts"] == 1
        assert shown["last_error"].startswith("BlockedDestination") and \
            "not a public address" in shown["last_error"]
        assert listener.connections() == 0


def test_outbound_stripe_refuses_loopback(app, world, no_allowlist, monkeypatch):
    """The Stripe SDK speaks through the guard: a base address on loopback (not allowed)
    is refused before any connection, and the usage stays in the outbox."""
    from datetime import UTC, datetime, timedelta
    from decimal import Decimal

    from overture.billing import meter_outbox
    from overture.billing.usage import Entry, record

    with listening() as listener:
        monkeypatch.setitem(app.extensions, "overture.settings", dataclasses.replace(
            app.extensions["overture.settings"], stripe_api_key="sk_test_never_leaves",
            stripe_api_base=listener.url("").rstrip("/"), stripe_max_retries=0))
        hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=2)
        with scoped_to(world.tenants["a"].id):
            record([Entry("steps", Decimal(1))], at=hour)
            db.session.commit()
        meter_outbox.enqueue_all()
        report = meter_outbox.send_due()
        assert listener.connections() == 0
    assert report.sent == 0 and report.failed == 1
    assert "not a public address" in report_error(world.tenants["a"].id)


def test_outbound_event_deliveries_refuse_loopback(app, world, monkeypatch):
    """An event subscription made while loopback was allowed: once it is not, each
    delivery is refused by the guard before any connection, and the attempt says why."""
    from overture.tenants.events import outbox, sender
    from overture.tenants.events.models import EventAttempt
    from tests.events_support import subscribe

    with listening() as listener:
        monkeypatch.setenv("OVERTURE_OUTBOUND_ALLOWLIST", "127.0.0.0/8")
        subscribe(world, listener.url("/hook"), ["*"])
        monkeypatch.delenv("OVERTURE_OUTBOUND_ALLOWLIST")
        a = world.tenants["a"].id
        with scoped_to(a):
            outbox.emit("workflow.published", {"workflow_id": "w"})
            db.session.commit()
            sender.send_due(utcnow())
        assert listener.connections() == 0
    with scoped_to(a):
        attempts = [(e.status_code, e.error) for e in db.session.scalars(select(EventAttempt))]
        db.session.rollback()
    ((status, error),) = attempts
    assert status is None and "outbound guard" in error


def report_error(tenant_id):
    from overture.billing.stripe_models import MeterEventRow

    with scoped_to(tenant_id):
        row = db.session.query(MeterEventRow).one()
        found = row.last_error
        db.session.rollback()
    return found


def test_outbound_http_action_on_a_worker_fails_with_blocked(app_ctx, world, settings):
    a = world.tenants["a"].id
    with listening() as listener:
        wf = publish(a, {"steps": [{"id": "call", "type": "action", "action": "http.request",
                                    "input": {"url": listener.url("/internal")}}]})
        with running_workers(settings, processes=1, threads=2,
                             env={"OVERTURE_OUTBOUND_ALLOWLIST": ""}):
            run = wait_for(a, start(a, wf, {}))
        assert listener.connections() == 0
    assert run.status == "failed"
    (row,) = rows_of(a, run.id)
    assert row.error["code"] == "blocked" and "127.0.0.1" in row.error["message"]


def test_outbound_allowlisted_model_server_is_reached(world, monkeypatch, httpserver):
    """With the allow-list, the fake model server is reached as before: the refusals
    above are the guard's doing, not a broken client."""
    monkeypatch.setenv("OVERTURE_OUTBOUND_ALLOWLIST", "127.0.0.1/32")
    fake = FakeOpenAI(httpserver)
    fake.say(answer("fine"))
    with scoped_to(world.tenants["a"].id):
        result = chat(ModelSettings("openai", "gpt-4o-mini"), fake.credential(world).id,
                      [Message(role="user", content="hello")])
        db.session.rollback()
    assert '"fine"' in result.result.text
    assert fake.headers[0]["Host"] == httpserver.url_for("/").split("/")[2]
