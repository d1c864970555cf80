"""Connectors (the catalogue) and connections (a tenant's authorised use of one)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from flask import request, session, url_for

from overture.connectors import connections, registry
from overture.connectors.execute import execute
from overture.connectors.models import Connection
from overture.connectors.oauth import authorization_url
from overture.connectors.spec import Connector
from overture.platform.db import db
from overture.platform.errors import ValidationFailed
from overture.web.api import api
from overture.web.api.connector_schemas import (
    ActionResult,
    ActionRun,
    AuthorizeOut,
    ConnectionCreate,
    ConnectionOut,
    ConnectionPage,
    ConnectionQuery,
    ConnectionUpdate,
    ConnectorList,
    ConnectorOut,
    TestOut,
)
from overture.web.auth import current_access, require

TAGS = ["Connectors"]


def connector_view(connector: Connector) -> dict[str, Any]:
    return {
        "key": connector.key, "name": connector.name, "description": connector.description,
        "icon": connector.icon, "base_url": connector.base_url, "docs_url": connector.docs_url,
        "auth": {"kind": connector.auth.kind, "scopes": list(connector.auth.scopes),
                 "fields": [asdict(f) for f in connector.auth.fields],
                 "secret_fields": connector.auth.secret_fields()},
        "actions": connector.actions, "triggers": connector.triggers,
    }


@api.get("/connectors")
@require("workflow.read")
@api.output(ConnectorList)
@api.doc(tags=TAGS, summary="Every connector, its actions and their schemas")
def list_connectors() -> dict[str, Any]:
    return {"items": [connector_view(c) for c in registry.all_connectors()]}


@api.get("/connectors/<key>")
@require("workflow.read")
@api.output(ConnectorOut)
@api.doc(tags=TAGS, summary="One connector")
def get_connector(key: str) -> dict[str, Any]:
    return connector_view(registry.get(key))


@api.get("/connections")
@require("credential.read")
@api.input(ConnectionQuery, location="query", arg_name="query")
@api.output(ConnectionPage)
@api.doc(tags=TAGS, summary="Connections of this tenant")
def list_connections(query: dict[str, Any]) -> dict[str, Any]:
    page = connections.list_connections(current_access(), query["cursor"], query["limit"],
                                        query["connector_key"])
    return page.body()


@api.post("/connections")
@require("credential.manage")
@api.input(ConnectionCreate, arg_name="body")
@api.output(ConnectionOut, status_code=201)
@api.doc(tags=TAGS, summary="Connect an app; credentials are sealed in the vault")
def create_connection(body: dict[str, Any]) -> Connection:
    connection = connections.create(
        current_access(), connector_key=body["connector_key"], name=body["name"],
        credential_fields=body["credentials"], credential_id=body["credential_id"],
        base_url=body["base_url"], settings=body["settings"], rate_limit=body["rate_limit"])
    db.session.commit()
    return connection


@api.get("/connections/<connection_id>")
@require("credential.read")
@api.output(ConnectionOut)
@api.doc(tags=TAGS, summary="One connection")
def get_connection(connection_id: str) -> Connection:
    return connections.get_connection(current_access(), connection_id)


@api.patch("/connections/<connection_id>")
@require("credential.manage")
@api.input(ConnectionUpdate, arg_name="body")
@api.output(ConnectionOut)
@api.doc(tags=TAGS, summary="Rename, re-point or re-limit a connection")
def update_connection(connection_id: str, body: dict[str, Any]) -> Connection:
    access = current_access()
    connection = connections.update(access, connections.get_connection(access, connection_id),
                                    **body)
    db.session.commit()
    return connection


@api.delete("/connections/<connection_id>")
@require("credential.manage")
@api.output({}, status_code=204)
@api.doc(tags=TAGS, summary="Delete a connection")
def delete_connection(connection_id: str) -> tuple[str, int]:
    access = current_access()
    connections.delete(access, connections.get_connection(access, connection_id))
    db.session.commit()
    return "", 204


@api.post("/connections/<connection_id>/test")
@require("credential.read")
@api.output(TestOut)
@api.doc(tags=TAGS, summary="Check the connection's credentials against the app")
def test_connection(connection_id: str) -> dict[str, Any]:
    access = current_access()
    return connections.test(access, connections.get_connection(access, connection_id))


@api.post("/connections/<connection_id>/actions/<action_key>")
@require("workflow.edit")
@api.input(ActionRun, arg_name="body")
@api.output(ActionResult)
@api.doc(tags=TAGS, summary="Call one action now (an Idempotency-Key header is passed on)")
def run_action(connection_id: str, action_key: str, body: dict[str, Any]) -> dict[str, Any]:
    access = current_access()
    connection = connections.get_connection(access, connection_id)
    key = request.headers.get("Idempotency-Key")
    if key is not None and not 1 <= len(key) <= 200:
        raise ValidationFailed.field("Idempotency-Key", "must be 1 to 200 characters")
    return {"output": execute(connection.id, action_key, body["input"], key)}


@api.post("/connections/<connection_id>/authorize")
@require("credential.manage")
@api.output(AuthorizeOut)
@api.doc(tags=TAGS, summary="Start OAuth2: the URL to send the user to (state bound to "
                            "this session)")
def authorize_connection(connection_id: str) -> dict[str, str]:
    access = current_access()
    connection = connections.get_connection(access, connection_id)
    connector = registry.get(connection.connector_key)
    if connector.auth.kind != "oauth2":
        raise ValidationFailed.field("connector_key", f"{connector.name} does not use OAuth2")
    redirect_uri = url_for("oauth.callback", _external=True)
    url = authorization_url(connection, connector, redirect_uri, session)
    db.session.commit()
    return {"authorize_url": url}
