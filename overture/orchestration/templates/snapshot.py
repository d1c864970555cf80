"""A workspace as a template version holds it: plain JSON, read through each domain's
own services, in the scope of the workspace being read.

    {"format": 1,
     "knowledge":   [{name, description, documents: [{title, text}]}],
     "connections": [{name, connector_key, base_url, settings, rate_limit}],
     "agents":      [{name, description, config, needs_credential}],
     "workflows":   [{name, description, version, definition}],
     "webhooks":    [{workflow, enabled, signed}],
     "triggers":    [{workflow, connection, trigger_key, interval_seconds, enabled}],
     "schedules":   [{workflow, cron, timezone, input, enabled}]}

Connections are placeholders: their connector and non-secret settings, never a
credential (not even its id). An agent's provider credential is dropped the same way,
and so are a webhook's URL token and signing secret: `signed` only says that calls
must be signed (templates/starters.py gives each workspace its own). Versions taken
before webhooks and trigger switches were recorded lack them; readers default them.
Ids of the source workspace mean nothing elsewhere, so a definition's references to a
connection or a sub-workflow are written as `@connection:<name>` / `@workflow:<name>`
and resolved again where the snapshot is installed (`references.resolve`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from overture.connectors import connections as connection_service
from overture.orchestration import scheduler, triggers, workflows
from overture.orchestration.agents import knowledge
from overture.orchestration.agents import service as agents
from overture.orchestration.templates import references
from overture.platform.pagination import MAX_LIMIT, Page
from overture.tenants.access import Access

FORMAT = 1


def every(fetch: Callable[[str | None, int], Page[Any]]) -> list[Any]:
    """Every row of a paginated listing."""
    rows: list[Any] = []
    cursor: str | None = None
    while True:
        page = fetch(cursor, MAX_LIMIT)
        rows += page.items
        cursor = page.next_cursor
        if not cursor:
            return rows


def take(access: Access) -> dict[str, Any]:
    """Snapshot the workspace in scope. `access` is the caller's access to it."""
    conns = every(lambda c, n: connection_service.list_connections(access, c, n))
    flows = [(w, workflows.current_version(w)) for w in
             every(lambda c, n: workflows.list_workflows(c, n))]
    published = [(w, v) for w, v in flows if v is not None]
    ids = references.IdNames(connections={str(c.id): c.name for c in conns},
                             workflows={str(w.id): w.name for w, _ in published})
    return {
        "format": FORMAT,
        "knowledge": [_collection(k) for k in every(knowledge.list_collections)],
        "connections": [_placeholder(c) for c in conns],
        "agents": [_agent(a) for a in every(agents.list_agents)],
        "workflows": [{"name": w.name, "description": w.description, "version": v.number,
                       "definition": references.portable(v.definition, ids)}
                      for w, v in published],
        "webhooks": [webhook_item(w) for w, _ in published],
        "triggers": _triggers(ids),
        "schedules": _schedules(ids),
    }


def _collection(collection: Any) -> dict[str, Any]:
    documents = every(lambda c, n: knowledge.list_documents(collection, c, n))
    return {"name": collection.name, "description": collection.description,
            "documents": [{"title": d.title, "text": d.text} for d in documents]}


def _placeholder(connection: Any) -> dict[str, Any]:
    # Settings are the connector's non-secret options (secrets live in the vault, under
    # the credential, which is not copied).
    return {"name": connection.name, "connector_key": connection.connector_key,
            "base_url": connection.base_url, "settings": dict(connection.settings or {}),
            "rate_limit": connection.rate_limit}


def _agent(agent: Any) -> dict[str, Any]:
    version = agents.current_version(agent)
    config = dict(version.config) if version else {}
    needs_credential = config.get("credential_id") is not None
    config["credential_id"] = None
    return {"name": agent.name, "description": agent.description, "config": config,
            "needs_credential": needs_credential}


def webhook_item(workflow: Any) -> dict[str, Any]:
    return {"workflow": workflow.name, "enabled": workflow.webhook_enabled,
            "signed": workflow.webhook_credential_id is not None}


def trigger_item(sub: Any, workflow: str, connection: str) -> dict[str, Any]:
    return {"workflow": workflow, "connection": connection, "trigger_key": sub.trigger_key,
            "interval_seconds": sub.interval_seconds, "enabled": sub.enabled}


def schedule_item(schedule: Any, workflow: str) -> dict[str, Any]:
    return {"workflow": workflow, "cron": schedule.cron, "timezone": schedule.timezone,
            "input": schedule.input, "enabled": schedule.enabled}


def _triggers(ids: references.IdNames) -> list[dict[str, Any]]:
    found = []
    for sub in every(lambda c, n: triggers.list_subscriptions(c, n)):
        workflow = ids.workflows.get(str(sub.workflow_id))
        connection = ids.connections.get(str(sub.connection_id))
        if workflow and connection:
            found.append(trigger_item(sub, workflow, connection))
    return found


def _schedules(ids: references.IdNames) -> list[dict[str, Any]]:
    found = []
    for schedule in every(lambda c, n: scheduler.list_schedules(c, n)):
        workflow = ids.workflows.get(str(schedule.workflow_id))
        if workflow:
            found.append(schedule_item(schedule, workflow))
    return found
