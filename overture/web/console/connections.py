"""Connections of the workspace in use: the list, a new one from the connector
catalogue (its form generated from the connector's auth schema), one connection's page
with its masked credentials, a test (htmx, inline), the OAuth2 connect, and the fill-in
form of a placeholder made from a template. The services are the API's."""

from __future__ import annotations

from typing import Any

from flask import abort, flash, redirect, request, session, url_for
from werkzeug.wrappers import Response

from overture.connectors import connections, registry
from overture.connectors.errors import ActionFailed
from overture.connectors.models import Connection
from overture.connectors.oauth import authorization_url
from overture.platform import audit
from overture.platform.db import db
from overture.platform.errors import Forbidden, OvertureError, ValidationFailed
from overture.tenants import credentials
from overture.web.api.connectors import connector_view
from overture.web.console import bp
from overture.web.console.context import console_access, page, render
from overture.web.console.forms import FormErrors, form_errors, status_of
from overture.web.console.schema_form import auth_schema, fields_of, public_form, values_of

NO_STORE = {"Cache-Control": "no-store"}
STATES = {"active": ("Active", "succeeded"), "pending": ("Pending", "waiting"),
          "broken": ("Failed", "failed")}


def _catalogue() -> list[dict[str, Any]]:
    return sorted((connector_view(c) for c in registry.all_connectors()),
                  key=lambda c: c["name"].lower())


def _connector(key: str | None) -> dict[str, Any]:
    found = registry.find(key or "")
    if found is None:
        abort(404)
    return connector_view(found)


def _last_tests(target_id: str | None = None) -> dict[str, Any]:
    """Each connection's latest test, from the audit log (the test writes one event)."""
    latest: dict[str, Any] = {}
    for event in audit.iter_events(audit.EventFilter(action_prefix="connection.tested",
                                                     target_id=target_id)):
        latest[str(event.target_id)] = {"at": event.occurred_at,
                                        "ok": bool((event.details or {}).get("ok"))}
    return latest


def state_of(connection: Connection) -> tuple[str, str]:
    return STATES.get(connection.status, (connection.status.capitalize(), "queued"))


def needs_credentials(connection: Connection, connector: dict[str, Any]) -> bool:
    return connection.credential_id is None and connector["auth"]["kind"] != "none"


@bp.get("/connections", endpoint="connections")
@page("credential.read")
def connections_list() -> Any:
    access = console_access()
    rows = connections.list_connections(access, None, 200).items
    catalogue = {c["key"]: c for c in _catalogue()}
    return render("console/connections.html", title="Connections", connections=rows,
                  catalogue=catalogue, tests=_last_tests(), state_of=state_of,
                  needs_credentials=needs_credentials,
                  can_manage=access.can("credential.manage"))



def _new_page(connector: dict[str, Any], errors: FormErrors | None = None,
              form: dict[str, str] | None = None) -> Any:
    schema = auth_schema(connector["auth"])
    errors = errors or FormErrors()
    body, status = render("console/connections_new.html", status_of(errors),
                          title=f"Connect {connector['name']}", connector=connector,
                          fields=fields_of(schema), errors=errors,
                          form=form or {"name": connector["name"], "base_url": ""})
    return body, status, NO_STORE


@bp.get("/connections/new")
@page("credential.manage")
def new_connection() -> Any:
    key = request.args.get("connector")
    if not key:
        access = console_access()
        return render("console/connections_catalogue.html", title="New connection",
                      catalogue=_catalogue(), can_manage=access.can("credential.manage"))
    return _new_page(_connector(key))


@bp.post("/connections/new")
@page("credential.manage")
def create_connection() -> Any:
    connector = _connector(request.args.get("connector"))
    schema = auth_schema(connector["auth"])
    form = {"name": request.form.get("name", ""), "base_url": request.form.get("base_url", ""),
            **public_form(schema, request.form)}
    with form_errors({"name", "base_url", *(f"fields.{f.name}" for f in fields_of(schema))}) \
            as errors:
        values = values_of(schema, request.form)
        connection = connections.create(
            console_access(), connector_key=connector["key"], name=form["name"],
            credential_fields=values or None, base_url=form["base_url"].strip() or None)
        db.session.commit()
        flash(f"{connection.name} is connected.", "ok")
        return redirect(url_for("console.connection", connection_id=connection.id))
    return _new_page(connector, errors, form)


def _detail(connection: Connection, errors: FormErrors | None = None,
            test: dict[str, Any] | None = None, form: dict[str, str] | None = None) -> Any:
    access = console_access()
    connector = connector_view(registry.get(connection.connector_key))
    credential = (credentials.get_credential(access, connection.credential_id)
                  if connection.credential_id else None)
    errors = errors or FormErrors()
    body, status = render(
        "console/connection.html", status_of(errors), title=connection.name,
        connection=connection, connector=connector, credential=credential,
        state=state_of(connection),
        last_test=_last_tests(str(connection.id)).get(str(connection.id)),
        test=test, fields=fields_of(auth_schema(connector["auth"])), errors=errors,
        form=form or {}, fill=needs_credentials(connection, connector),
        can_manage=access.can("credential.manage"))
    return body, status, NO_STORE


def _find(connection_id: str) -> Connection:
    return connections.get_connection(console_access(), connection_id)


@bp.get("/connections/<connection_id>")
@page("credential.read")
def connection(connection_id: str) -> Any:
    return _detail(_find(connection_id))


@bp.post("/connections/<connection_id>/test")
@page("credential.read")
def test_connection(connection_id: str) -> Any:
    found = _find(connection_id)
    try:
        result = connections.test(console_access(), found)
    except OvertureError as err:  # e.g. no credentials yet: said inline, like a failure
        if isinstance(err, Forbidden):
            raise
        db.session.rollback()
        result = {"ok": False, "reason": err.code, "detail": err.detail}
    if request.headers.get("HX-Request"):
        return render("console/_connection_test.html", test=result)
    return _detail(_find(connection_id), test=result)


@bp.post("/connections/<connection_id>/credentials")
@page("credential.manage")
def fill_connection(connection_id: str) -> Any:
    found = _find(connection_id)
    schema = auth_schema(connector_view(registry.get(found.connector_key))["auth"])
    with form_errors({f"fields.{f.name}" for f in fields_of(schema)}) as errors:
        connections.fill_placeholder(console_access(), found,
                                     credential_fields=values_of(schema, request.form))
        db.session.commit()
        flash(f"{found.name} has its credentials.", "ok")
        return redirect(url_for("console.connection", connection_id=found.id))
    return _detail(_find(connection_id), errors, form=public_form(schema, request.form))


@bp.post("/connections/<connection_id>/authorize")
@page("credential.manage")
def authorize_connection(connection_id: str) -> Any:
    """Off to the app; `oauth.callback` brings the person back to this connection."""
    found = _find(connection_id)
    connector = registry.get(found.connector_key)
    with form_errors() as errors:
        if connector.auth.kind != "oauth2":
            raise ValidationFailed.field("connector_key", f"{connector.name} does not use OAuth2")
        try:
            url = authorization_url(found, connector, url_for("oauth.callback", _external=True),
                                    session, return_to=url_for("console.connection",
                                                               connection_id=found.id))
        except ActionFailed as failure:  # a misconfigured app: said on the page
            raise ValidationFailed.field("_form", failure.detail) from failure
        db.session.commit()
        return redirect(url)
    return _detail(_find(connection_id), errors)


@bp.post("/connections/<connection_id>/delete")
@page("credential.manage")
def delete_connection(connection_id: str) -> Response:
    found = _find(connection_id)
    name = found.name
    connections.delete(console_access(), found)
    db.session.commit()
    flash(f"{name} is deleted; steps that used it will fail until re-pointed.", "ok")
    return redirect(url_for("console.connections"))
