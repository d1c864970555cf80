"""Request and response shapes of templates and their roll-outs."""

from __future__ import annotations

from apiflask import Schema
from apiflask.fields import UUID, Boolean, DateTime, Dict, Integer, List, Nested, String
from apiflask.validators import Length, Range

from overture.orchestration.templates.rollouts import MAX_WORKSPACES
from overture.web.api.schemas import Strict, TenantOut


class TemplateCreate(Strict):
    workspace_id = UUID(required=True, metadata={"description": "the client workspace to "
                                                                "snapshot as version 1"})
    name = String(required=True, validate=Length(1, 120))


class UseCaseTemplateCreate(Strict):
    use_case = String(required=True, validate=Length(1, 64),
                      metadata={"description": "a key of GET /templates/use-cases"})
    name = String(load_default=None, validate=Length(1, 120))


class UseCaseOut(Schema):
    key = String()
    name = String()
    summary = String()
    patterns = List(String())
    samples = Dict(metadata={"description": "sample inputs of its workflow, by name"})


class UseCaseList(Schema):
    items = List(Nested(UseCaseOut))


class TemplateVersionCreate(Strict):
    workspace_id = UUID(required=True, metadata={"description": "the client workspace to "
                                                                "snapshot as the next version"})


class TemplateOut(Schema):
    id = UUID()
    name = String()
    latest_version = Integer()
    created_by_id = UUID(allow_none=True)
    created_at = DateTime()


class TemplatePage(Schema):
    items = List(Nested(TemplateOut))
    next_cursor = String(allow_none=True)


class TemplateVersionOut(Schema):
    number = Integer()
    source_workspace_id = UUID(allow_none=True)
    created_by_id = UUID(allow_none=True)
    created_at = DateTime()
    snapshot = Dict(metadata={"description": "agents, workflows (published versions), "
                                             "knowledge, triggers, schedules and connection "
                                             "placeholders; never a secret"})


class ProvisionedOut(Schema):
    workspace_id = UUID()
    version = Integer()


class TemplateDetail(TemplateOut):
    versions = List(Nested(TemplateVersionOut))
    workspaces = List(Nested(ProvisionedOut),
                      metadata={"description": "workspaces provisioned from it, and the "
                                               "version each is on"})


class ProvisionCreate(Strict):
    name = String(required=True, validate=Length(1, 120))
    slug = String(load_default=None, validate=Length(1, 64))


class Placeholder(Schema):
    id = UUID()
    name = String()
    connector_key = String()
    status = String()


class AgentPlaceholder(Schema):
    name = String()
    provider = String()


class WebhookPlaceholder(Schema):
    id = UUID(metadata={"description": "the workflow"})
    workflow = String()


class Placeholders(Schema):
    connections = List(Nested(Placeholder), metadata={
        "description": "connections made without credentials: authorise them (OAuth2) or "
                       "give them credentials (POST /connections/{id}/credentials)"})
    agents = List(Nested(AgentPlaceholder), metadata={
        "description": "agents whose model provider needs the workspace's own credential"})
    webhooks = List(Nested(WebhookPlaceholder), metadata={
        "description": "workflows whose webhook calls must be signed: each got a fresh "
                       "secret nobody has seen, so every call is refused until the "
                       "workspace sets one it can give the sender (rotate it in the "
                       "console, or PATCH the workflow's webhook_credential_id)"})


class ProvisionOut(Schema):
    workspace = Nested(TenantOut)
    version = Integer()
    placeholders = Nested(Placeholders)


class RolloutCreate(Strict):
    version = Integer(required=True, validate=Range(1, 2**31 - 1))
    workspace_ids = List(UUID(), required=True, validate=Length(1, MAX_WORKSPACES))
    canary_ids = List(UUID(), load_default=list, validate=Length(0, MAX_WORKSPACES),
                      metadata={"description": "applied first; a failing canary stops the "
                                               "roll-out"})
    stop_on_failure = Boolean(load_default=False)


class RolloutWorkspaceOut(Schema):
    workspace_id = UUID()
    canary = Boolean()
    status = String(metadata={"description": "pending, applied, failed or rolled_back"})
    error = String(allow_none=True)
    from_version = Integer(allow_none=True)
    applied_at = DateTime(allow_none=True)
    notes = List(String(), metadata={
        "description": "what the workspace's own edits made the roll-out (or its rollback) "
                       "leave alone, e.g. an unpublished draft kept beside the template's "
                       "version"})


class RolloutOut(Schema):
    id = UUID()
    template_id = UUID()
    version = Integer()
    status = String(metadata={"description": "running, completed, failed, stopped or "
                                             "rolled_back"})
    stop_on_failure = Boolean()
    created_by_id = UUID(allow_none=True)
    created_at = DateTime()
    finished_at = DateTime(allow_none=True)
    rolled_back_at = DateTime(allow_none=True)
    workspaces = List(Nested(RolloutWorkspaceOut))


class CredentialsFill(Strict):
    credentials = Dict(load_default=None, metadata={"description": "the connector's auth "
                                                                   "fields, sealed in the vault"})
    credential_id = UUID(load_default=None, allow_none=True)
