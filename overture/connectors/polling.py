"""Ask a connection's app for new events: one poll of a polling trigger.

The engine (`orchestration.triggers`) decides when to poll, records each event under
its dedupe key and starts the runs; this module only talks to the app.
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass, fields
from typing import Any

from overture.connectors import registry
from overture.connectors.context import ActionContext, PollContext
from overture.connectors.errors import ActionFailed
from overture.connectors.execute import context_for
from overture.connectors.models import Connection
from overture.connectors.spec import Trigger
from overture.platform.db import db
from overture.platform.errors import ValidationFailed

MAX_DEDUPE_KEY = 200  # trigger_events.dedupe_key


@dataclass
class PollResult:
    events: list[tuple[str, dict[str, Any]]]  # (dedupe key, event), oldest first
    state: dict[str, Any]  # the cursor to keep for the next poll


def dedupe_key(raw: Any) -> str:
    """A dedupe key that fits its column: long keys are replaced by their digest."""
    key = str(raw).strip()
    if len(key) > MAX_DEDUPE_KEY:
        return "sha256:" + hashlib.sha256(key.encode()).hexdigest()
    return key


def polling_trigger(connector_key: str, trigger_key: str) -> Trigger:
    trigger = registry.get(connector_key).trigger(trigger_key)
    if trigger is None or trigger.kind != "polling" or trigger.poll is None:
        raise ValidationFailed.field("trigger_key", f"{connector_key!r} has no polling trigger "
                                                    f"{trigger_key!r}")
    return trigger


def poll(connection: Connection, trigger_key: str, state: dict[str, Any] | None,
         timeout: float = 30.0) -> PollResult:
    """One poll. Commits the record of the credentials' use; holds nothing open while the
    app is asked. An event without a dedupe key of its own is keyed by its content."""
    connector = registry.get(connection.connector_key)
    trigger = polling_trigger(connector.key, trigger_key)
    assert trigger.poll is not None
    base = context_for(connection, connector, f"{connector.key}.{trigger.key}", timeout=timeout)
    ctx = PollContext(**{f.name: getattr(base, f.name) for f in fields(ActionContext)},
                      state=copy.deepcopy(state or {}))
    db.session.commit()
    events = trigger.poll(ctx)
    if not isinstance(events, list):
        raise ActionFailed("invalid_event", f"{connector.key}.{trigger.key} returned no list")
    keyed = []
    for event in events:
        raw = trigger.dedupe_key(event)
        if raw in (None, ""):
            raw = "sha256:" + hashlib.sha256(json.dumps(
                event, sort_keys=True, default=str).encode()).hexdigest()
        keyed.append((dedupe_key(raw), event))
    return PollResult(keyed, ctx.state)
