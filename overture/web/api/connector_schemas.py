"""Request and response shapes of connectors and connections."""

from __future__ import annotations

from apiflask import Schema
from apiflask.fields import UUID, Boolean, DateTime, Dict, List, Nested, Raw, String
from apiflask.validators import Length

from overture.web.api.schemas import PageQuery, Strict


class ActionOut(Schema):
    key = String()
    name = String()
    description = String()
    input_schema = Dict()
    output_schema = Dict()
    side_effects = Boolean()
    idempotent = Boolean()


class TriggerKindOut(Schema):
    """A trigger a connector offers (a subscription to one is a TriggerOut)."""

    key = String()
    name = String()
    description = String()
    kind = String()
    output_schema = Dict()


class AuthOut(Schema):
    kind = String()
    scopes = List(String())
    fields = List(Dict())
    secret_fields = List(String())


class ConnectorOut(Schema):
    key = String()
    name = String()
    description = String()
    icon = String()
    base_url = String(allow_none=True)
    docs_url = String(allow_none=True)
    auth = Nested(AuthOut)
    actions = List(Nested(ActionOut))
    triggers = List(Nested(TriggerKindOut))


class ConnectorList(Schema):
    items = List(Nested(ConnectorOut))


class ConnectionCreate(Strict):
    connector_key = String(required=True, validate=Length(1, 80))
    name = String(required=True, validate=Length(1, 120))
    credentials = Dict(load_default=None, metadata={
        "description": "credential fields; secret ones are sealed in the vault"})
    credential_id = UUID(load_default=None, metadata={"description": "or a stored credential"})
    base_url = String(load_default=None, validate=Length(1, 500))
    settings = Dict(load_default=None)
    rate_limit = String(load_default=None, validate=Length(1, 40))


class ConnectionUpdate(Strict):
    name = String(validate=Length(1, 120))
    base_url = String(validate=Length(0, 500))
    settings = Dict()
    rate_limit = String(validate=Length(0, 40))


class ConnectionOut(Schema):
    id = UUID()
    name = String()
    connector_key = String()
    credential_id = UUID(allow_none=True)
    base_url = String(allow_none=True)
    settings = Dict()
    status = String()
    broken_reason = String(allow_none=True)
    rate_limit = String(allow_none=True)
    created_at = DateTime()
    last_used_at = DateTime(allow_none=True)


class ConnectionPage(Schema):
    items = List(Nested(ConnectionOut))
    next_cursor = String(allow_none=True)


class ConnectionQuery(PageQuery):
    connector_key = String(load_default=None)


class TestOut(Schema):
    ok = Boolean()
    reason = String()
    detail = String()


class ActionRun(Strict):
    input = Dict(load_default=dict)


class ActionResult(Schema):
    output = Raw()


class AuthorizeOut(Schema):
    authorize_url = String()
