"""Vendor triggers: Slack, HubSpot, Zendesk, Jira and Typeform post signed events to a
workflow's secret URL; each event the trigger's settings let through starts one run.

The vendor's signing secret is sealed in a vault credential of the trigger's own,
read only to check a call (`use_credential` records each use). Events are recorded
under `vendor:<trigger id>` and their vendor's id (triggers.start_once): a retry, a
redelivery or a replay within the signature's window finds the first run and starts
nothing, and the vendor is answered 200 (a 4xx or 5xx would make it retry again).
"""

from __future__ import annotations

import dataclasses
import secrets
import uuid
from typing import Any

from overture.connectors.models import Connection
from overture.orchestration import token_triggers, triggers, vendor_events
from overture.orchestration.models import Workflow
from overture.orchestration.trigger_models import VendorTrigger
from overture.platform import audit, jsonbody
from overture.platform.db import db, get_or_404, utcnow
from overture.platform.errors import NotFound, ValidationFailed, WebhookDisabled
from overture.platform.webhook_signing import refused
from overture.tenants import credentials, domains
from overture.tenants.vault import use_credential

SECRET_MAX = 500


def _secret(value: Any) -> str:
    if not isinstance(value, str) or not 8 <= len(value.strip()) <= SECRET_MAX:
        raise ValidationFailed.field("secret", f"the vendor's signing secret, 8 to "
                                               f"{SECRET_MAX} characters")
    return value.strip()


def _connection(connection_id: Any, source: str) -> uuid.UUID | None:
    if connection_id is None:
        return None
    connection = db.session.get(Connection, connection_id)
    if connection is None or connection.connector_key != source:
        raise ValidationFailed.field("connection_id", f"no {source} connection with this id")
    return connection.id


def create(access: Any, workflow: Workflow, source: str, secret: Any,
           settings: dict[str, Any] | None = None, connection_id: Any = None,
           created_by: uuid.UUID | None = None) -> VendorTrigger:
    spec = vendor_events.source(source)
    cleaned = vendor_events.clean_settings(source, settings)
    credential = credentials.create(access, name=f"{spec.label} signing: {workflow.name}"[:120],
                                    kind="custom", fields={"secret": _secret(secret)},
                                    secret_fields=["secret"])
    trigger = VendorTrigger(workflow_id=workflow.id, source=source,
                            token=secrets.token_urlsafe(24), credential_id=credential.id,
                            connection_id=_connection(connection_id, source),
                            settings=cleaned, enabled=True, created_by_id=created_by)
    db.session.add(trigger)
    db.session.flush()
    audit.record("trigger.vendor_created", target_type="vendor_trigger", target_id=trigger.id,
                 details={"workflow_id": str(workflow.id), "source": source,
                          "settings": cleaned})
    return trigger


def list_for(workflow_id: uuid.UUID) -> list[VendorTrigger]:
    return token_triggers.for_workflow(VendorTrigger, workflow_id)


def list_all(limit: int) -> list[VendorTrigger]:
    return token_triggers.all_of(VendorTrigger, limit)


def public_url(trigger: VendorTrigger) -> str:
    """Where the vendor posts: the URL to paste into its settings."""
    base = domains.public_base_url(trigger.tenant_id).rstrip("/")
    return f"{base}/hooks/{trigger.tenant_id}/{trigger.source}/{trigger.token}"


def get(trigger_id: Any) -> VendorTrigger:
    return get_or_404(VendorTrigger, trigger_id, "vendor trigger")


def update(access: Any, trigger: VendorTrigger, *, enabled: bool | None = None,
           settings: dict[str, Any] | None = None, secret: Any = None) -> VendorTrigger:
    changed: dict[str, Any] = {}
    if settings is not None:
        trigger.settings = changed["settings"] = vendor_events.clean_settings(trigger.source,
                                                                              settings)
    if enabled is not None and enabled != trigger.enabled:
        trigger.enabled = changed["enabled"] = enabled
    if secret is not None:
        fields = {"secret": _secret(secret)}
        if trigger.credential_id is None:
            made = credentials.create(access, name=f"{trigger.source} signing {trigger.id}",
                                      kind="custom", fields=fields, secret_fields=["secret"])
            trigger.credential_id = made.id
        else:
            credentials.update(access, trigger.credential_id, fields=fields)
        changed["secret"] = "replaced"  # noqa: S105 (never the value)
    if changed:
        audit.record("trigger.vendor_updated", target_type="vendor_trigger",
                     target_id=trigger.id, details=changed)
    return trigger


def delete(access: Any, trigger: VendorTrigger) -> None:
    audit.record("trigger.vendor_deleted", target_type="vendor_trigger", target_id=trigger.id,
                 details={"workflow_id": str(trigger.workflow_id), "source": trigger.source})
    credential_id = trigger.credential_id
    db.session.delete(trigger)
    db.session.flush()
    if credential_id is not None:
        credentials.delete(access, credential_id)


def by_token(source: str, token: str) -> VendorTrigger | None:
    """The scope tenant's trigger of this source behind this URL token."""
    return token_triggers.by_token(VendorTrigger, token, VendorTrigger.source == source)


# --------------------------------------------------------------------------- intake


def receive(trigger: VendorTrigger, call: vendor_events.Call) -> dict[str, Any]:
    """Check a vendor's call and start a run per new event it carries. The caller
    commits. Refusals are problems: 401 (signature), 409 (turned off)."""
    if not trigger.enabled:
        raise WebhookDisabled("this trigger is turned off: nothing was started. A builder "
                              "of the workspace can turn it on again (Triggers)")
    if trigger.credential_id is None:
        raise refused(
            "bad-secret", "this trigger has no signing secret: set one (Triggers)")
    spec = vendor_events.source(trigger.source)
    # use_credential commits its credential.used record: a refused attempt keeps it too
    secret = str(use_credential(trigger.credential_id, "webhook.verify").get("secret") or "")
    spec.verify(secret, call)
    intake = spec.read(dataclasses.replace(call, payload=jsonbody.loads(call.body or b"{}")),
                       dict(trigger.settings or {}))
    if intake.reply is not None:
        return intake.reply
    workflow = db.session.get(Workflow, trigger.workflow_id)
    if workflow is None or workflow.archived_at is not None:
        raise NotFound("no such trigger")
    started, existing, run_ids = 0, 0, []
    for event_id, event in intake.events:
        run, created = triggers.start_once(workflow, f"vendor:{trigger.id}", [f"id:{event_id}"],
                                           event, trigger.source)
        started, existing = started + int(created), existing + int(not created)
        run_ids.append(str(run.id))
    if intake.events:
        trigger.last_event_at = utcnow()
    return {"started": started, "existing": existing, "ignored": intake.ignored,
            "run_ids": run_ids}
