"""The one way to call an action: `execute(connection, action, input, idempotency_key)`.

It validates the input against the action's schema (422 naming the field), takes
the credentials out of the vault (which records `credential.used`), injects auth,
calls the app through the connection's client, and records `connector.action_called`
(digests of input and output, never values) and an `action_calls` usage event (per
connector; with the workflow, run, step and agent the caller names in `attribution`),
in one transaction: each call is counted once, with its outcome, whatever it was.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from decimal import Decimal
from typing import Any

from jsonschema import Draft202012Validator

from overture.billing import enforce, usage
from overture.billing.meters import ACTION_CALLS
from overture.connectors import registry
from overture.connectors.client import ConnectionClient
from overture.connectors.context import (
    ActionContext,
    auth_headers,
    base_url_for,
    connection_origins,
    holds_secrets,
    record_refusal,
)
from overture.connectors.errors import ActionFailed, ConnectionBroken
from overture.connectors.models import Connection, ConnectionStatus
from overture.connectors.oauth import ensure_fresh
from overture.connectors.spec import Action, Connector
from overture.platform import audit, metrics
from overture.platform.db import current_tenant_id, db, get_or_404, utcnow
from overture.platform.errors import NotFound, ValidationFailed
from overture.platform.ids import new_id
from overture.tenants.vault import use_credential


def digest(value: Any) -> str:
    canonical = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def validate_input(action: Action, value: Any) -> dict[str, Any]:
    errors = []
    for err in sorted(Draft202012Validator(action.input_schema).iter_errors(value),
                      key=lambda e: list(e.absolute_path)):
        where = ".".join(str(p) for p in err.absolute_path)
        if err.validator == "required":
            where = ".".join(filter(None, [where, err.message.split("'")[1]]))
        errors.append({"field": f"input.{where}" if where else "input", "message": err.message})
    if errors:
        raise ValidationFailed(errors)
    return value


def context_for(connection: Connection, connector: Connector, purpose: str,
                idempotency_key: str | None = None, timeout: float = 30.0) -> ActionContext:
    """Credentials out of the vault, and a client for this connection."""
    if connection.status == ConnectionStatus.BROKEN:
        raise ConnectionBroken("broken", f"connection {connection.name!r} needs "
                               f"re-authorisation: {connection.broken_reason or 'unknown'}")
    values: dict[str, Any] = {}
    if connection.credential_id is not None:
        if connector.auth.kind == "oauth2":
            ensure_fresh(connection, connector)
        values = use_credential(connection.credential_id, purpose)
    values = {**values, **(connection.settings or {})}
    headers, params = auth_headers(connector, values)
    base_url = base_url_for(connector, connection.base_url, values)
    origins = connection_origins(connection, base_url) \
        if holds_secrets(connector, values, headers, params) else None
    client = ConnectionClient(base_url, headers, params=params, rate_key=str(connection.id),
                              rate=connection.rate_limit, timeout=timeout, origins=origins,
                              on_refused=record_refusal(connection.id, connector.key))
    return ActionContext(connector, connection.id, dict(connection.settings or {}), values,
                         client, idempotency_key, timeout)


def execute(connection_id: uuid.UUID | str, action_key: str, input: Any,
            idempotency_key: str | None = None, timeout: float = 30.0,
            attribution: usage.Attribution = usage.NOWHERE) -> Any:
    """Call one action of the scope tenant's connection; commits its own records."""
    connection = get_or_404(Connection, connection_id, "connection")
    connector = registry.get(connection.connector_key)
    action = connector.action(action_key)
    if action is None:
        raise NotFound(f"connector {connector.key!r} has no action {action_key!r}")
    validate_input(action, input)
    ctx = context_for(connection, connector, f"{connector.key}.{action.key}", idempotency_key,
                      timeout)
    connection_ref, workflow_details = connection.id, {"connector": connector.key,
                                                      "action": action.key}
    db.session.commit()  # nothing is held open while the app is called
    held = _hold(attribution)  # 402 when a cap on action calls is reached
    try:
        output = action.run(ctx, input)
        outcome = "ok"
    except ActionFailed as failure:
        output, outcome = None, failure.reason
        _record(connection_ref, workflow_details, input, output, outcome, idempotency_key,
                attribution, held)
        raise
    except BaseException:
        _give_back(held)
        raise
    _record(connection_ref, workflow_details, input, output, outcome, idempotency_key,
            attribution, held)
    return output


def _hold(attribution: usage.Attribution) -> str | None:
    """Hold one call on the limits of action calls that apply; its key, if any."""
    tenant_id = current_tenant_id()
    key = f"action:{new_id()}"
    if tenant_id is None or not attribution.billed or not enforce.hold(
            tenant_id, ACTION_CALLS, Decimal(1), key, agent_id=attribution.agent_id,
            workflow_id=attribution.workflow_id, certain=True):
        return None
    return key


def _give_back(held: str | None) -> None:
    tenant_id = current_tenant_id()
    if held is not None and tenant_id is not None:
        enforce.release(tenant_id, [held])


def _record(connection_id: uuid.UUID | None, details: dict[str, Any], input: Any, output: Any,
            outcome: str, idempotency_key: str | None, attribution: usage.Attribution,
            held: str | None = None) -> None:
    metrics.connector_called(details["connector"], outcome)
    connection = db.session.get(Connection, connection_id) if connection_id else None
    if connection is not None:
        connection.last_used_at = utcnow()
    audit.record("connector.action_called", target_type="connection" if connection_id else None,
                 target_id=connection_id,
                 details={**details, "outcome": outcome, "input_digest": digest(input),
                          "output_digest": digest(output) if output is not None else None,
                          "idempotency_key": idempotency_key})
    usage.record([usage.Entry(ACTION_CALLS, Decimal(1), details["connector"])],
                 attribution=attribution)
    enforce.settle([held] if held else [])
    db.session.commit()


def execute_unconnected(connector_key: str, action_key: str, input: Any,
                        idempotency_key: str | None = None, timeout: float = 30.0,
                        attribution: usage.Attribution = usage.NOWHERE) -> Any:
    """Call an action that needs no credentials (a public HTTP request) without a
    connection. Still validated, audited and metered."""
    connector = registry.get(connector_key)
    action = connector.action(action_key)
    if action is None:
        raise NotFound(f"connector {connector.key!r} has no action {action_key!r}")
    if any(f.required for f in connector.auth.fields) or connector.auth.kind not in (
            "none", "custom"):
        raise ValidationFailed.field("connection", f"{connector.name} needs a connection")
    validate_input(action, input)
    client = ConnectionClient(connector.base_url, {}, timeout=timeout)
    ctx = ActionContext(connector, uuid.UUID(int=0), {}, {}, client, idempotency_key, timeout)
    details = {"connector": connector.key, "action": action.key}
    held = _hold(attribution)
    try:
        output = action.run(ctx, input)
    except ActionFailed as failure:
        _record(None, details, input, None, failure.reason, idempotency_key, attribution, held)
        raise
    except BaseException:
        _give_back(held)
        raise
    _record(None, details, input, output, "ok", idempotency_key, attribution, held)
    return output
