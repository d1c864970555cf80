"""The Flask app factory."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

import dramatiq
import structlog
from apiflask import APIFlask
from flask import Response, g, request

from overture.orchestration import worker
from overture.orchestration.agents import patterns  # noqa: F401  (registers the agent steps)
from overture.platform import audit, audit_seal, database_outage, mail_delivery, tracing
from overture.platform.config import Settings, load_settings
from overture.platform.db import CONNECT_TIMEOUT, EMPTY_SCOPE, activate_scope, db
from overture.platform.logging import configure_logging, get_logger
from overture.platform.queue import instrument, make_broker
from overture.tenants import mail_servers, vault
from overture.tenants.events import sender as events_sender
from overture.web import (
    brand_pages,
    builder_pages,
    console,
    docs,
    headers,
    health,
    hooks,
    hosts,
    invitation_pages,
    mail_links,
    mailbox_pages,
    mcp_server,
    mfa_pages,
    oauth,
    portal,
    problems,
    ratelimit,
    recovery_pages,
    sessions,
    sso_pages,
    strict_input,
    stripe_hooks,
    telemetry,
    vendor_hooks,
)
from overture.web.api import load_endpoints
from overture.web.extensions import client_address, csrf, login_manager

log = get_logger(__name__)
REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def create_app(settings: Settings | None = None, broker: dramatiq.Broker | None = None) -> APIFlask:
    settings = settings or load_settings()
    configure_logging(settings.log_level)
    tracing.configure(settings.tracing_endpoint, settings.service_name)
    app = docs.DocumentedApp(__name__, title="Overture API", version="v1",
                             spec_path="/api/v1/openapi.json", docs_path=None)
    app.config.update(
        SECRET_KEY=settings.secret_key,
        SQLALCHEMY_DATABASE_URI=settings.database_url,
        SQLALCHEMY_ENGINE_OPTIONS=_engine_options(settings),
        SESSION_COOKIE_HTTPONLY=True,
        # Host-only cookies: a session made on one tenant's domain is never sent to
        # another's (web/sessions.py also refuses one presented elsewhere).
        SESSION_COOKIE_DOMAIN=None,
        REMEMBER_COOKIE_DOMAIN=None,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.session_cookie_secure,
        REMEMBER_COOKIE_HTTPONLY=True,
        REMEMBER_COOKIE_SECURE=settings.session_cookie_secure,
        # Signed-in sessions live server-side (web.sessions) with their own idle and
        # absolute lifetimes; this bounds the signed cookie of an anonymous visitor.
        PERMANENT_SESSION_LIFETIME=timedelta(hours=settings.session_max_hours),
        WTF_CSRF_TIME_LIMIT=None,  # the token lives as long as the session
        JSON_SORT_KEYS=False,
        SECURITY_SCHEMES={
            "ApiKey": {"type": "http", "scheme": "bearer",
                       "description": "an API key: `Authorization: Bearer ovt_...`"},
            "Session": {"type": "apiKey", "in": "cookie", "name": "session"},
        },
    )
    app.extensions["overture.settings"] = settings
    app.extensions["overture.broker"] = broker = broker or make_broker(settings.redis_url,
                                                                  settings.redis_namespace)
    instrument(broker)  # traces carried in its messages (a broker given too)
    worker.bind(app, broker)  # the step actor, and where the engine's messages go
    mail_delivery.bind(app, broker)  # the mail actor, and where queued mail goes
    events_sender.bind(app, broker)  # the outbound events actor

    db.init_app(app)
    # Refuses to start (ConfigError naming the key) when the master key is missing or
    # cannot unwrap the stored data keys: never serve silently undecryptable credentials.
    vault.install(app, settings)
    audit_seal.load_audit_keyring(settings)  # a bad OVERTURE_AUDIT_KEY stops the start too
    csrf.init_app(app)
    sessions.install(app)
    hosts.install(app)  # after sessions: its hook goes first, before the session is read
    telemetry.install(app)  # after hosts: first of all, it times and traces them too
    login_manager.init_app(app)
    login_manager.login_view = "console.login"
    login_manager.user_loader(sessions.load_user)
    ratelimit.install(app, settings)

    problems.register(app)
    strict_input.install(app)  # one JSON parser, one text rule, 413 over the body limit
    _request_lifecycle(app)
    app.register_blueprint(load_endpoints())
    app.register_blueprint(health.bp)
    app.register_blueprint(console.bp)
    app.register_blueprint(builder_pages.bp)
    app.register_blueprint(docs.bp)
    app.register_blueprint(hooks.bp)
    app.register_blueprint(stripe_hooks.bp)
    app.register_blueprint(vendor_hooks.bp)
    app.register_blueprint(mcp_server.bp)
    app.register_blueprint(invitation_pages.bp)
    app.register_blueprint(oauth.bp)
    app.register_blueprint(recovery_pages.bp)
    app.register_blueprint(mailbox_pages.bp)
    app.register_blueprint(mfa_pages.bp)
    app.register_blueprint(sso_pages.bp)
    app.register_blueprint(portal.bp)
    brand_pages.install(app)  # `brand` in every template and mail; /brand-assets/
    mail_servers.install()  # mail about a tenant leaves through its own server, if any
    mail_links.install(app)  # after every blueprint: the pages mails link to
    app.spec_processor(docs.finish_document)
    return app


def _engine_options(settings: Settings) -> dict[str, object]:
    if settings.is_sqlite:
        return {"connect_args": {"check_same_thread": False, "timeout": 30}}
    return {"pool_pre_ping": True, "pool_size": 10, "max_overflow": 20,
            "connect_args": {"connect_timeout": CONNECT_TIMEOUT}}


def _end_transaction() -> None:
    """Roll back whatever the request left open. The answer is already made: an error
    here would replace it with the server's bare 500, so a database that went away
    meanwhile is logged and its connection thrown out (the pool makes a new one)."""
    try:
        db.session.rollback()
    except Exception as exc:
        if not database_outage.infrastructure_error(exc):
            raise
        log.warning("request.rollback_failed", error=database_outage.summary(exc))
        db.session.invalidate()


def _request_lifecycle(app: APIFlask) -> None:
    @app.before_request
    def _start() -> None:
        activate_scope(EMPTY_SCOPE)
        g.pop("principal", None)  # per request, even where an app context outlives one
        g.pop("access", None)
        incoming = request.headers.get("X-Request-ID", "")
        g.request_id = incoming if REQUEST_ID_RE.match(incoming) else uuid.uuid4().hex
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=g.request_id)
        audit.set_actor(audit.SYSTEM)
        audit.set_origin(audit.Origin(g.request_id, client_address(),
                                      request.headers.get("User-Agent")))

    @app.after_request
    def _finish(response: Response) -> Response:
        response.headers["X-Request-ID"] = g.get("request_id", "")
        headers.secure(response, g.get(brand_pages.STYLE_HASHES, ()))
        log.info("request", method=request.method, path=request.path,
                 status=response.status_code)
        return response

    @app.teardown_request
    def _end(exc: BaseException | None) -> None:
        # End what the request left open first: then forgetting its scope writes nothing
        # (into a transaction whose connection was lost, that write raised again here).
        _end_transaction()
        activate_scope(EMPTY_SCOPE)
        audit.set_actor(audit.SYSTEM)
        audit.set_origin(audit.NOWHERE)
        structlog.contextvars.clear_contextvars()
